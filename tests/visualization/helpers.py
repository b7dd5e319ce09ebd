"""Shared checks of the figure tests: a written PNG is a real, non-trivial image; the bars a panel draws."""
from pathlib import Path

from PIL import Image

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def assert_png(path, min_bytes: int = 8000, min_side: int = 300) -> None:
    path = Path(path)
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes, (path, len(data))
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert min(image.size) >= min_side, image.size
        assert len(set(image.convert('L').getdata())) > 8  # drawn, not a blank canvas


def bars(ax, label: str):
    """The bar rectangles of the container labelled ``label`` (one label per ``ax.bar`` call)."""
    found = [c for c in ax.containers if c.get_label() == label and hasattr(c, 'patches')]
    assert len(found) == 1, [c.get_label() for c in ax.containers]
    return list(found[0].patches)


def error_bars(ax):
    """The error-bar containers of ``ax``."""
    from matplotlib.container import ErrorbarContainer
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
