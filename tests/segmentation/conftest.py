import pytest

from samzoo.segmentation import automatic


@pytest.fixture
def decode_calls(monkeypatch):
    """Spy on ``automatic.decode_points``: the list fills with ``(number of points, window)`` per call."""
    calls = []
    original = automatic.decode_points

    def spy(model, embeddings, points, **kw):
        calls.append((len(points), kw["window"]))
        return original(model, embeddings, points, **kw)

    monkeypatch.setattr(automatic, "decode_points", spy)
    return calls
