"""Helpers every part of the library uses; nothing here imports the rest of ``resnest``.

:mod:`.errors` (UserError), :mod:`.cli` (one error path for every script, MXNet's native log
lines kept off the console), :mod:`.io` (atomic writes), :mod:`.seed`, :mod:`.distributed`
(Horovod or one process, one start for every script), :mod:`.threads`, :mod:`.checksum`,
:mod:`.cpu` (model and ISA flags).
"""
