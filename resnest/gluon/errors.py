"""The one exception type for mistakes a user can make, and the command-line wrapper for it.

Scripts call library functions; the library raises :class:`UserError` with one sentence naming
the thing and the fix. :func:`run_cli` turns that sentence into ``error: ...`` on stderr and a
non-zero exit instead of a traceback.
"""
import sys


class UserError(Exception):
    """Bad input from the user: a missing or corrupt file, an unknown model, a wrong size."""


def run_cli(main, argv=None):
    """Run ``main(argv)`` and exit: 0 on success, 2 with one sentence on a :class:`UserError`,
    130 on Ctrl-C."""
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
