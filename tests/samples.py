"""Test helpers shared by several test modules (imported as `samples`, like `zoo`)."""

# A case file whose custom_vjp rule for sin is off by a relative 1e-7: autodiff is the odd one out.
WRONG_RULE_FILE = """
    import jax
    import jax.numpy as jnp
    from diffcheck import Case

    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * jnp.cos(x) * (1 + 1e-7),))

    wrong_rule = Case(name="wrong_rule", fn=f, wrt="x", points={"p": dict(x=0.4)})
"""


def without_timings(data):
    """A report's JSON without the fields that change from run to run (timings and the summary)."""
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if k not in ("seconds", "summary")}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data


def primitives(fn, *args) -> set:
    """The names of every primitive in fn's jaxpr at args (x64 on), inner programs included."""
    import jax
    import jax.extend.core

    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    with jax.enable_x64(True):
        walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return names
