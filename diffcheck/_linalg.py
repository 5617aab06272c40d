"""Linear algebra for the exact method, from the defining equations, never from JAX's rules.

Two ways, both exact:

* **closed forms on the local piece** — `lu` (Gaussian elimination with the pivots that partial
  pivoting picks from the values at the point, as LAPACK's getrf: the largest |value|, the first
  on a tie), `qr` (Householder reflections with LAPACK's sign, β = −sign(α)·‖x‖, the sign taken at
  the point), and the solve of `custom_linear_solve` (the matrix of its `matvec`, eliminated). The
  discrete choices are constants on the piece; the expressions whose sign change would change them
  (|pivot| − |candidate|, Householder's α) are `Piece` guards, which the kink analysis reads.
* **implicit nodes** — `eigh` and `svd`, which have no closed form beyond 2×2. Each output is a
  node y(a) defined by equations F(y, a) = 0 written in SymPy (A·v = λ·v, vᵀv = 1; A·v = s·u,
  Aᵀ·u = s·v, uᵀu + vᵀv = 2). Its value is solved at the working precision by mpmath (`eigsy`,
  `svd_r`), the branch (the k-th eigenvalue ascending, the singular vector's sign) chosen as the
  program's at the point. Its derivative is the implicit function theorem, ∂y/∂aⱼ = −F_y⁻¹·F_aⱼ:
  a node of the system G(y, x, a) = [F; F_y·x + F_aⱼ] = 0, whose Jacobians SymPy derives from F
  and whose linear part mpmath solves. Differentiating again builds the same construction on G, so
  every order is SymPy's calculus on the equations. Where F_y is singular (a repeated eigenvalue or
  singular value) the derivative does not exist: the value is NaN, and the gaps between
  eigenvalues are guards, so that the point is a kink, never a false derivative.
"""

from __future__ import annotations

import functools
import itertools

import mpmath
import numpy as np
import sympy

from ._rules import as_objects, attach, attach_all
from .errors import Unavailable


def _let(point, e):
    """`e` as a let-bound symbol of the translation (intermediates of an elimination stay small)."""
    if not isinstance(e, sympy.Expr) or e.is_Atom:
        return e
    symbol = sympy.Symbol(f"v__{len(point.definitions)}", real=True)
    point.definitions[symbol] = e
    return symbol


def _f(point, e) -> float:
    return float(point.value(e)) if isinstance(e, sympy.Basic) else float(e)


#: A gap between eigenvalues (or singular values) below this, relative to the largest, is a tie.
TIE = 1e-10


def _parameters(point, exprs) -> list:
    """The parameters (symbols without a definition) that `exprs` depend on."""
    found, seen, stack = [], set(), [e for e in exprs if isinstance(e, sympy.Basic)]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if e in point.definitions:
            stack.append(point.definitions[e])
        elif e.is_Symbol:
            found.append(e)
        else:
            stack.extend(e.args)
    return sorted(found, key=str)


def _pinned(point, exprs) -> list:
    """A guard that is 0 at the point and moves with every parameter `exprs` depend on: a repeated
    eigenvalue has no derivative (its system's Jacobian F_y is singular), so its outputs are at a
    kink in every parameter, rather than some derivatives NaN where the others are finite."""
    params = _parameters(point, exprs)
    if not params:
        return []
    return [sympy.Add(*[p - sympy.Rational(float(point.value(p))) for p in params])]


def _tied(point, values, gaps) -> list[bool]:
    """Per value, whether it ties with a neighbour (gaps[k] lies between values k and k + 1; a
    gap past the last is the last value itself, a singular value at 0)."""
    scale = max([abs(_f(point, v)) for v in values] + [1e-300])
    small = [abs(_f(point, g)) <= TIE * scale for g in gaps]
    return [(k > 0 and small[k - 1]) or (k < len(small) and small[k]) for k in range(len(values))]


def _batches(a):
    return list(np.ndindex(*a.shape[:-2]))


# --- implicit nodes ------------------------------------------------------------------------------


class Implicit(sympy.Function):
    """Component `component` of the solution y(a) of `system` (the arguments are a)."""

    is_extended_real = True
    system = None
    component = 0

    def fdiff(self, argindex=1):
        derivative = self.system.derivative(argindex - 1)
        return derivative.node(self.system.size + self.component)(*self.args)


class System:
    """y(a) defined near the point by F(y, a) = 0, F a SymPy vector; `solve(a values)` gives y at
    the working precision (the branch the program takes), or None where it is not defined."""

    _ids = itertools.count()

    def __init__(self, name, equations, unknowns, params, solve):
        self.id = next(System._ids)
        self.name = name
        self.F = sympy.Matrix(equations)
        self.y, self.a = list(unknowns), list(params)
        self.size = len(self.y)
        self._solve = solve
        self._nodes, self._derivatives, self._cache = {}, {}, {}

    def node(self, k):
        """The SymPy function class of y_k (called on the expressions of a)."""
        cls = self._nodes.get(k)
        if cls is None:
            imp = functools.partial(_numeric_value, self, k)
            cls = type(f"{self.name}{self.id}_{k}", (Implicit,), {"system": self, "component": k, "_imp_": imp})
            self._nodes[k] = cls
        return cls

    @functools.cached_property
    def _jacobians(self):
        Fy = self.F.jacobian(self.y)
        Fa = self.F.jacobian(self.a)
        args = self.y + self.a
        return sympy.lambdify(args, Fy, "mpmath"), sympy.lambdify(args, Fa, "mpmath"), Fy

    def derivative(self, j):
        """The system of (y, ∂y/∂a_j): [F; F_y·x + F_aj] = 0, x = −F_y⁻¹·F_aj."""
        out = self._derivatives.get(j)
        if out is None:
            x = list(sympy.symbols(f"x{self.id}_{j}_0:{self.size}", real=True))
            _, _, Fy = self._jacobians
            extra = Fy * sympy.Matrix(x) + self.F.diff(self.a[j])

            def solve(a, j=j):
                y = self.solve(a)
                if y is None:
                    return None
                fy, fa, _ = self._jacobians
                try:
                    dx = mpmath.lu_solve(mpmath.matrix(fy(*y, *a)), -mpmath.matrix(fa(*y, *a))[:, j])
                except ZeroDivisionError:  # F_y singular: no derivative (a repeated eigenvalue)
                    return None
                return list(y) + [dx[i] for i in range(self.size)]

            out = System(self.name + "d", list(self.F) + list(extra), self.y + x, self.a, solve)
            self._derivatives[j] = out
        return out

    def solve(self, a):
        key = (tuple(a), mpmath.mp.prec)
        if key not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = self._solve(list(a))
        return self._cache[key]


def _numeric_value(system, k, *args):
    """y_k at the arguments: mpmath numbers in, an mpmath number out; floats or arrays in (the
    NumPy evaluation over many points), float64 out, each point solved at 20 digits."""
    if not any(isinstance(x, (float, np.floating, np.ndarray)) for x in args):
        y = system.solve([mpmath.mpf(x) for x in args])
        return mpmath.nan if y is None else y[k]
    arrays = np.broadcast_arrays(*[np.asarray(x, np.float64) for x in args])
    out = np.empty(arrays[0].shape)
    with mpmath.workdps(20):
        for index in np.ndindex(*out.shape):
            y = system.solve([mpmath.mpf(float(x[index])) for x in arrays])
            out[index] = np.nan if y is None else float(y[k])
    return out if out.ndim else out[()]


def _dummies(prefix, n):
    return list(sympy.symbols(f"{prefix}0:{n}", real=True))


def _reference(fn, *arrays):
    """The program's own outputs at the point, for the discrete choices (signs, order)."""
    import jax

    with jax.enable_x64(True):
        out = fn(*arrays)
    return [np.asarray(o, np.float64) for o in (out if isinstance(out, (tuple, list)) else [out])]


# --- eigh ------------------------------------------------------------------------------------------


def _eigsy(A):
    E, Q = mpmath.eigsy(A)
    order = sorted(range(A.rows), key=lambda i: E[i])
    return [E[i] for i in order], [[Q[r, i] for r in range(A.rows)] for i in order]


@functools.lru_cache(maxsize=64)
def _eigsy_cached(values, n, prec):
    with mpmath.workprec(prec):
        return _eigsy(mpmath.matrix([list(values[i * n : (i + 1) * n]) for i in range(n)]))


def _symmetric(a, n, lower):
    """The symmetric matrix LAPACK reads: the lower (or upper) triangle, mirrored."""

    def pick(i, j):
        return a[max(i, j) * n + min(i, j)] if lower else a[min(i, j) * n + max(i, j)]

    return [[pick(i, j) for j in range(n)] for i in range(n)]


def _eigh_system(n, k, lower, reference):
    a = _dummies("a", n * n)
    lam, v = sympy.Symbol("lam", real=True), _dummies("v", n)
    A = sympy.Matrix(_symmetric(a, n, lower))
    V = sympy.Matrix(v)
    equations = list(A * V - lam * V) + [(V.T * V)[0] - 1]

    def solve(values):
        S = _symmetric(values, n, lower)
        E, Q = _eigsy_cached(tuple(x for row in S for x in row), n, mpmath.mp.prec)
        vec = Q[k]
        if mpmath.fsum(x * r for x, r in zip(vec, reference)) < 0:
            vec = [-x for x in vec]
        return [E[k]] + list(vec)

    return System("Eigh", equations, [lam] + v, a, solve)


def eigh(point, a, *, lower=True, sort_eigenvalues=True, subset_by_index=None, **_):
    """Eigenvectors (columns) and eigenvalues (ascending) of the symmetric matrix, as implicit nodes."""
    from jax import lax

    if subset_by_index not in (None, (0, -1)) or not sort_eigenvalues:
        raise Unavailable("eigh: only all eigenvalues, sorted, are translated")
    a = as_objects(a)
    n = a.shape[-1]
    vectors, values = np.empty(a.shape, dtype=object), np.empty(a.shape[:-1], dtype=object)
    for batch in _batches(a):
        flat = list(a[batch].reshape(-1))
        concrete = np.array([_f(point, e) for e in flat]).reshape(n, n)
        ref_v, _ = _reference(lambda x: lax.linalg.eigh(x, lower=lower, symmetrize_input=False), concrete)
        systems = [_eigh_system(n, k, lower, list(ref_v[:, k])) for k in range(n)]
        lam = [_let(point, s.node(0)(*flat)) for s in systems]
        gaps = [lam[k + 1] - lam[k] for k in range(n - 1)]
        tied = _tied(point, lam, gaps)
        for k, s in enumerate(systems):
            pin = _pinned(point, flat) if tied[k] else []
            values[batch + (k,)] = attach(lam[k], gaps[max(k - 1, 0) : k + 1] + pin, point)
            column = [s.node(1 + r)(*flat) for r in range(n)]
            vectors[batch + (slice(None), k)] = attach_all(np.array(column, dtype=object), gaps + pin, point)
    return [vectors, values]


# --- svd -------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _svd_cached(values, m, n, prec):
    with mpmath.workprec(prec):
        U, S, V = mpmath.svd_r(mpmath.matrix([list(values[i * n : (i + 1) * n]) for i in range(m)]))
        order = sorted(range(len(S)), key=lambda i: -S[i])
        return ([S[i] for i in order], [[U[r, i] for r in range(m)] for i in order],
                [[V[i, c] for c in range(n)] for i in order])  # fmt: skip


def _svd_system(m, n, k, reference_u):
    a = _dummies("a", m * n)
    s, u, v = sympy.Symbol("s", real=True), _dummies("u", m), _dummies("w", n)
    A, U, V = sympy.Matrix(m, n, a), sympy.Matrix(u), sympy.Matrix(v)
    equations = list(A * V - s * U) + list(A.T * U - s * V) + [(U.T * U + V.T * V)[0] - 2]

    def solve(values):
        S, Us, Vs = _svd_cached(tuple(values), m, n, mpmath.mp.prec)
        uk, vk = Us[k], Vs[k]
        if mpmath.fsum(x * r for x, r in zip(uk, reference_u)) < 0:
            uk, vk = [-x for x in uk], [-x for x in vk]
        return [S[k]] + list(uk) + list(vk)

    return System("Svd", equations, [s] + u + v, a, solve)


def svd(point, a, *, full_matrices=True, compute_uv=True, subset_by_index=None, **_):
    """Singular values (descending) and, when asked, U and Vᵀ, as implicit nodes."""
    from jax import lax

    a = as_objects(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    if subset_by_index not in (None, (0, k)) and subset_by_index is not None:
        raise Unavailable("svd: a subset of the singular values is not translated")
    if compute_uv and full_matrices and m != n:
        raise Unavailable("svd: the full U or V of a non-square matrix is not unique (its extra columns)")
    S = np.empty(a.shape[:-2] + (k,), dtype=object)
    U = np.empty(a.shape[:-2] + (m, k), dtype=object)
    Vt = np.empty(a.shape[:-2] + (k, n), dtype=object)
    for batch in _batches(a):
        flat = list(a[batch].reshape(-1))
        concrete = np.array([_f(point, e) for e in flat]).reshape(m, n)
        ref_u, _, _ = _reference(lambda x: lax.linalg.svd(x, full_matrices=False), concrete)
        systems = [_svd_system(m, n, i, list(ref_u[:, i])) for i in range(k)]
        s = [_let(point, sy.node(0)(*flat)) for sy in systems]
        # a tie is a kink, and so is the smallest value at 0 (|·| there)
        gaps = [s[i] - s[i + 1] for i in range(k - 1)] + [s[-1]]
        tied = _tied(point, s, gaps)
        for i, sy in enumerate(systems):
            pin = _pinned(point, flat) if tied[i] else []
            S[batch + (i,)] = attach(s[i], gaps[max(i - 1, 0) : i + 1] + ([s[-1]] if i == k - 1 else []) + pin, point)
            if compute_uv:
                u = np.array([sy.node(1 + r)(*flat) for r in range(m)], dtype=object)
                v = np.array([sy.node(1 + m + c)(*flat) for c in range(n)], dtype=object)
                U[batch + (slice(None), i)] = attach_all(u, gaps + pin, point)
                Vt[batch + (i,)] = attach_all(v, gaps + pin, point)
    return [S, U, Vt] if compute_uv else [S]


# --- lu ----------------------------------------------------------------------------------------------


def _eliminate(point, A, guards=None):
    """Gaussian elimination of the object matrix A (m×n) with partial pivoting at the point:
    (packed L\\U, pivots). `guards`, when a list, receives |pivot| − |candidate| of each step."""
    A = np.array(A, dtype=object)
    m, n = A.shape
    pivots = []
    for j in range(min(m, n)):
        column = [abs(_f(point, A[r, j])) for r in range(j, m)]
        p = j + int(np.argmax(column))  # the first of the largest, as LAPACK's idamax
        if column[p - j] == 0:
            raise Unavailable("the matrix is singular at the point: its factorisation has a zero pivot")
        if guards is not None:
            guards += [sympy.Abs(A[p, j]) - sympy.Abs(A[r, j]) for r in range(j, m) if r != p]
        pivots.append(p)
        A[[j, p]] = A[[p, j]]
        for r in range(j + 1, m):
            A[r, j] = _let(point, A[r, j] / A[j, j])
            for c in range(j + 1, n):
                A[r, c] = _let(point, A[r, c] - A[r, j] * A[j, c])
    return A, pivots


def lu(point, a, **_):
    """JAX's lu: P·A = L·U packed in one matrix, the pivots and the permutation (int32)."""
    a = as_objects(a)
    m, n = a.shape[-2:]
    out = np.empty(a.shape, dtype=object)
    pivots = np.zeros(a.shape[:-2] + (min(m, n),), np.int32)
    perms = np.zeros(a.shape[:-2] + (m,), np.int32)
    for batch in _batches(a):
        guards = []
        packed, piv = _eliminate(point, a[batch], guards)
        perm = list(range(m))
        for j, p in enumerate(piv):
            perm[j], perm[p] = perm[p], perm[j]
        out[batch] = attach_all(packed, guards, point)
        pivots[batch], perms[batch] = piv, perm
    return [out, pivots, perms]


def solve(point, M, b):
    """x with M·x = b (M square, object arrays): elimination with pivots chosen at the point for
    accuracy only — the solution does not depend on them, so they are no kinks."""
    n = M.shape[0]
    packed, piv = _eliminate(point, np.concatenate([M, np.asarray(b, dtype=object).reshape(n, 1)], axis=1)[:, :])
    # elimination was applied to [M | b]: back substitution on the upper triangle
    x = [None] * n
    for i in range(n - 1, -1, -1):
        x[i] = _let(point, (packed[i, n] - sympy.Add(*[packed[i, c] * x[c] for c in range(i + 1, n)])) / packed[i, i])
    return np.array(x, dtype=object)


# --- qr ----------------------------------------------------------------------------------------------


def qr(point, a, *, pivoting=False, full_matrices=True, **_):
    """Householder QR as LAPACK's geqrf/orgqr computes it: reflector j maps the column below the
    diagonal onto β·e₁ with β = −sign(α)·‖x‖ (sign at the point; α's sign change is a guard)."""
    if pivoting:
        raise Unavailable("qr with column pivoting is not translated")
    a = as_objects(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    qcols = m if full_matrices else k
    Q = np.empty(a.shape[:-2] + (m, qcols), dtype=object)
    R = np.empty(a.shape[:-2] + (m if full_matrices else k, n), dtype=object)
    for batch in _batches(a):
        A, guards, reflectors = np.array(a[batch], dtype=object), [], []
        for j in range(k):
            alpha, x = A[j, j], list(A[j + 1 :, j])
            if all(_f(point, e) == 0 for e in x):
                if any(isinstance(e, sympy.Expr) and not e.is_number for e in x):
                    raise Unavailable("qr: a column is already reduced at the point (LAPACK's reflector switches off)")
                reflectors.append(None)  # no reflection (H = I), as dlarfg when x is zero
                continue
            sign = 1 if _f(point, alpha) >= 0 else -1
            guards.append(alpha)
            beta = _let(point, -sign * sympy.sqrt(alpha**2 + sympy.Add(*[e**2 for e in x])))
            tau = _let(point, (beta - alpha) / beta)
            v = [sympy.S.One] + [_let(point, e / (alpha - beta)) for e in x]
            reflectors.append((tau, v))
            A[j, j] = beta
            for c in range(j + 1, n):
                w = _let(point, tau * sympy.Add(*[v[i] * A[j + i, c] for i in range(len(v))]))
                for i in range(len(v)):
                    A[j + i, c] = _let(point, A[j + i, c] - v[i] * w)
        # Q = H₀·H₁·…·H_{k−1} applied to the first columns of the identity (orgqr)
        Qm = np.array([[sympy.S.One if r == c else sympy.S.Zero for c in range(qcols)] for r in range(m)], dtype=object)
        for j in range(k - 1, -1, -1):
            if reflectors[j] is None:
                continue
            tau, v = reflectors[j]
            for c in range(qcols):
                w = _let(point, tau * sympy.Add(*[v[i] * Qm[j + i, c] for i in range(len(v))]))
                for i in range(len(v)):
                    Qm[j + i, c] = _let(point, Qm[j + i, c] - v[i] * w)
        Q[batch] = attach_all(Qm, guards, point)
        for r in range(m):
            for c in range(min(r, n)):
                A[r, c] = sympy.S.Zero  # below the diagonal: the reflectors, not R
        R[batch] = attach_all(A[: R.shape[-2]], guards, point)
    return [Q, R]


# --- the incomplete beta function ------------------------------------------------------------------


class RegularizedBeta(sympy.Function):
    """I_x(a, b), JAX's `regularized_incomplete_beta(a, b, x)`. SymPy has no closed form of its
    derivative in a or b (nor does JAX: it raises): those are unavailable, not zero."""

    is_extended_real = True

    def fdiff(self, argindex=1):
        a, b, x = self.args
        if argindex == 3:
            return x ** (a - 1) * (1 - x) ** (b - 1) / sympy.beta(a, b)
        raise NotImplementedError("the derivative of I_x(a, b) in a or b has no closed form in SymPy")


def _betainc_mp(a, b, x):
    return mpmath.betainc(a, b, 0, x, regularized=True)


def _betainc_np(a, b, x):
    from scipy import special

    return special.betainc(a, b, x)


# --- linear algebra as closed forms (small matrices) ------------------------------------------


def cholesky(a, **_):
    """A = L·Lᵀ by the Cholesky–Banachiewicz recurrence on the lower triangle (as LAPACK reads it)."""
    a = as_objects(a)
    out = np.empty(a.shape, dtype=object)
    n = a.shape[-1]
    for batch in np.ndindex(*a.shape[:-2]):
        A, L = a[batch], np.full((n, n), sympy.S.Zero, dtype=object)
        for j in range(n):
            L[j, j] = sympy.sqrt(A[j, j] - sympy.Add(*[L[j, k] ** 2 for k in range(j)]))
            for i in range(j + 1, n):
                L[i, j] = (A[i, j] - sympy.Add(*[L[i, k] * L[j, k] for k in range(j)])) / L[j, j]
        out[batch] = L
    return out


def triangular_solve(a, b, *, left_side, lower, transpose_a, unit_diagonal, **_):
    """op(A)·X = B (or X·op(A) = B) by substitution, reading only A's triangle, as LAPACK does."""
    a, b = as_objects(a), as_objects(b)
    n = a.shape[-1]
    keep = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
    out = np.empty(b.shape, dtype=object)
    for batch in np.ndindex(*a.shape[:-2]):
        M = np.where(keep, a[batch], sympy.S.Zero)
        if unit_diagonal:
            np.fill_diagonal(M, sympy.S.One)
        M = M.T if transpose_a else M
        B = b[batch] if left_side else b[batch].T
        M = M if left_side else M.T  # X·op(A) = B  ⟺  op(A)ᵀ·Xᵀ = Bᵀ
        forward = bool(lower) ^ bool(transpose_a) ^ (not left_side)  # M is lower triangular: first row first
        order = range(n) if forward else range(n - 1, -1, -1)
        X = np.empty(B.shape, dtype=object)
        done = []
        for i in order:
            for c in range(B.shape[1]):
                X[i, c] = (B[i, c] - sympy.Add(*[M[i, k] * X[k, c] for k in done])) / M[i, i]
            done.append(i)
        out[batch] = X if left_side else X.T
    return out
