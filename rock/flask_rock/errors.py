"""Errors raised while reading or expanding a flask-framework project."""


class ProjectError(Exception):
    """The project cannot be expanded; ``problems`` lists every reason found.

    Each problem is a complete message that names the file or key at fault and says how to fix
    it, so callers can print them one per line.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(f"- {problem}" for problem in self.problems))
