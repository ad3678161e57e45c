"""Code on the page: the library's source shown in a chapter, rendered from the library itself
so it cannot drift. (The code a chapter writes out, in `#@save` cells, is checked against the
library by `tools/notebook_drift.py`.)"""

from __future__ import annotations

import inspect
import textwrap


def show_source(*objects) -> None:
    """Show the library's own source of `objects` (functions or classes) in the page, as
    highlighted Python, each headed by the module it lives in."""
    from .notebook import in_notebook

    text = "\n\n\n".join(f"# from {getattr(inspect.getmodule(obj), '__name__', '?')}\n"
                          + textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects)
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(f"```python\n{text}\n```"))
    else:
        print(text)
