"""The house rule for a user's mistake: one sentence, naming what is wrong."""


def one_sentence(err, *names):
    """Assert that ``err`` (a pytest ``ExceptionInfo`` or an exception) is one sentence that
    mentions every string in ``names``; returns the text."""
    text = str(getattr(err, "value", err))
    bare = text.replace("e.g. ", "").replace("i.e. ", "")
    assert "\n" not in bare and bare.endswith(".") and bare.count(". ") == 0, text
    assert "Traceback" not in text, text
    for name in names:
        assert str(name) in text, (name, text)
    return text
