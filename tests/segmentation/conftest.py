import pytest

from samzoo.segmentation import automatic, windows


@pytest.fixture
def decode_calls(monkeypatch):
    """Spy on ``decode_points``: the list fills with ``(number of points, window)`` per call.

    AMG calls it as ``automatic.decode_points``; it calls itself, for wider windows, as
    ``windows.decode_points``: both go through the spy.
    """
    calls = []
    original = automatic.decode_points

    def spy(model, embeddings, points, **kw):
        calls.append((len(points), kw["window"]))
        return original(model, embeddings, points, **kw)

    monkeypatch.setattr(automatic, "decode_points", spy)
    monkeypatch.setattr(windows, "decode_points", spy)
    return calls
