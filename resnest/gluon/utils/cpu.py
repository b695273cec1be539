"""What this CPU is, from ``/proc/cpuinfo`` (Linux): its model line and its ISA flags. Speed
figures differ by ISA (AVX2, AVX-512 with bf16, AMX), so every measured figure carries them and
the engine choice (:mod:`resnest.gluon.inference.auto`) reads them."""

__all__ = ["cpu_fields", "cpu_flags", "cpu_model"]


def cpu_fields(path="/proc/cpuinfo"):
    """The first CPU's ``key: value`` fields (empty when the file cannot be read)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:                      # a blank line ends the first CPU
                        break
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags(path="/proc/cpuinfo"):
    """The ISA flags of the first CPU, e.g. ``{'avx2', 'avx512f', 'avx512_bf16', ...}``."""
    return frozenset(cpu_fields(path).get("flags", "").split())


def cpu_model(path="/proc/cpuinfo"):
    """The model name with the family and model numbers (a virtual machine's name is often
    just "AMD EPYC", which says nothing of the generation)."""
    fields = cpu_fields(path)
    model = fields.get("model name", "unknown")
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']} model {fields['model']})"
    return model
