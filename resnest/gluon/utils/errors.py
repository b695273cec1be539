"""The one exception type for mistakes a user can make."""

__all__ = ["UserError"]


class UserError(Exception):
    """Bad input from the user: a missing or corrupt file, an unknown model, a wrong size.

    The message is one sentence naming the thing and the fix; :func:`resnest.gluon.utils.cli.
    run_cli` prints it as ``error: ...`` and exits 2 instead of showing a traceback.
    """
