"""The exceptions diffcheck raises. Each message says what was wrong, where, and what is valid."""


class DiffcheckError(Exception):
    """Base class of every error diffcheck raises on purpose."""


class UsageError(DiffcheckError, ValueError):
    """An option or argument is not valid (bad dtype, unknown case name, no GPU, …)."""


class CaseError(DiffcheckError):
    """A case could not be loaded or is malformed; the message names the file or case."""


class Unavailable(DiffcheckError):
    """A method cannot run on this function (e.g. a primitive SymPy has no translation for).

    Not fatal: the method is reported as "unavailable: <reason>" and the others still run.
    """


class BudgetExceeded(Unavailable):
    """The symbolic method ran past its time or size budget (`--timeout`); the others still run."""

    def __init__(self, state: str, reason: str):
        super().__init__(f"{state}: {reason}")
        self.state, self.reason = state, reason  # e.g. "timed out", "the symbolic derivatives took …"

    def __reduce__(self):
        return (type(self), (self.state, self.reason))


class PointError(DiffcheckError):
    """This point cannot be checked at all (the function fails, or its output is not finite)."""


class FormulaError(UsageError):
    """A formula given as text is refused: the message says what is not allowed and at which column."""

    def __init__(self, message: str, text: str | None = None, column: int | None = None):
        self.message, self.text, self.column = message, text, column
        where = ""
        if text is not None and column is not None:
            where = f" (column {column})\n  {text}\n  {' ' * (column - 1)}^"
        super().__init__(message + where)
