"""Form input for the configurations page: a configuration's name."""

from __future__ import annotations

from app.configuration import editing
from app.web.forms import Form


class NameForm(Form):
    name: str = ""

    def cleaned(self) -> str:
        return editing.clean_name(self.name)

    def check(self) -> dict[str, str]:
        problem = editing.name_problem(self.cleaned())
        return {"name": problem} if problem else {}
