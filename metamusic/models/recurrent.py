"""A fast LSTM layer for XLA:CPU: hoisted input projection, fused gates, weight gradients after the loop.

`FastLSTM` computes exactly what `nn.RNN(nn.OptimizedLSTMCell(hidden))` computes,
with the same parameter names and shapes (`ii/kernel`, `hi/kernel`, `hi/bias`, ...),
so parameters and checkpoints are interchangeable between the two.

Why it is faster. Autodiff of a `lax.scan` that closes over the recurrent kernel
accumulates that kernel's gradient inside the reverse loop, one small
[H, B] x [B, 4H] product and a read-modify-write of the [H, 4H] accumulator per
time step. Here
  * the input projection x @ W_i + b is one [T*B, E] x [E, 4H] matmul before the loop;
  * the four gates are one [B, H] x [H, 4H] matmul per step and one fused elementwise block;
  * the backward pass (a `jax.custom_vjp`) runs the reverse loop only for the
    per-step gate gradients dZ_t and the carried dh, dc; the kernel's gradient is
    then one [H, T*B] x [T*B, 4H] matmul, H_prev^T @ dZ, and the input projection's
    backward is again a pair of large matmuls (plain autodiff outside the loop).

Higher-order derivatives (second-order MAML differentiates the inner gradient):
the backward rule's reverse loop is itself a custom-VJP function (`backward_loop`), whose
transposed loop runs forward in time computing per-step cotangents only, the kernel's
cotangent again one matmul after the loop, which made second-order MAML meta-steps faster
with tasks one after another and under vmap (docs/design_notes.md#backward-loop-vjp). The forward rule
calls the custom-VJP function itself, so the outer derivative of the forward
pass takes the fast path as well; the custom function returns the cell states and
gate activations too (what the backward rule reads), and its backward accepts
cotangents for them, which is what the outer derivative of the backward rule sends.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.recurrent import DenseParams

GATES = ("i", "f", "g", "o")  # OptimizedLSTMCell's order


def _split(a):
    return jnp.split(a, 4, axis=-1)


@jax.custom_vjp
def recurrence(xg, w_h):
    """The LSTM loop over precomputed input gates.

    Args:
      xg: [T, B, 4H] time-major input projections x_t @ W_i + b (gate order i, f, g, o).
      w_h: [H, 4H] recurrent kernel.
    Returns:
      (hs, cs, acts): hidden states [T, B, H], cell states [T, B, H], gate activations
      [T, B, 4H] (sigmoid i, f, o; tanh g). Zero initial state.
    """
    B, H = xg.shape[1], w_h.shape[0]

    def step(carry, x_t):
        h, c, act = _cell(x_t, carry[0], carry[1], w_h)
        return (h, c), (h, c, act)

    zero = jnp.zeros((B, H), xg.dtype)
    _, (hs, cs, acts) = jax.lax.scan(step, (zero, zero), xg)
    return hs, cs, acts


def _cell(x_t, h, c, w_h):
    """One LSTM step from the precomputed input gates x_t: (h, c, gate activations)."""
    zi, zf, zg, zo = _split(x_t + h @ w_h)
    i, f, g, o = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jnp.tanh(zg), jax.nn.sigmoid(zo)
    c = f * c + i * g
    return o * jnp.tanh(c), c, jnp.concatenate([i, f, g, o], axis=-1)


def _recurrence_fwd(xg, w_h):
    out = recurrence(xg, w_h)  # not the loop itself: an outer derivative of this takes the custom path too
    return out, (w_h, *out)


def _shift(a):
    """[a_0 .. a_{T-1}] -> [0, a_0 .. a_{T-2}] along time (the previous step's state)."""
    return jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]], axis=0)


def _bwd_step(w_ht, carry, inp):
    """One step of the LSTM's reverse loop: the gate gradients dz_t and the carried (dh, dc)."""
    dh, dc = carry
    dh_ext, dc_ext, da_ext, c, cp, a = inp
    i, f, g, o = _split(a)
    di_ext, df_ext, dg_ext, do_ext = _split(da_ext)
    tc = jnp.tanh(c)
    dh = dh + dh_ext
    dc = dc + dc_ext + dh * o * (1 - tc * tc)
    do = dh * tc + do_ext
    di = dc * g + di_ext
    dg = dc * i + dg_ext
    df = dc * cp + df_ext
    dz = jnp.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=-1)
    return (dz @ w_ht, dc * f), dz


def _reverse_loop(w_ht, inputs, keep_carries: bool = True):
    """The reverse loop over time: gate gradients dz [T, B, 4H] and, with keep_carries, the carry
    entering each step (what the loop's own VJP reads; the plain first-order pass does not store it)."""
    B, H = inputs[0].shape[1], w_ht.shape[1]

    def step(carry, inp):
        new, dz = _bwd_step(w_ht, carry, inp)
        return new, ((dz, carry) if keep_carries else dz)

    zero = jnp.zeros((B, H), inputs[0].dtype)
    return jax.lax.scan(step, (zero, zero), inputs, reverse=True)[1]


@jax.custom_vjp
def backward_loop(w_ht, inputs):
    """dz [T, B, 4H] of the reverse loop; inputs = (dhs, dcs, dacts, cs, c_prev, acts), each time-major.

    A custom VJP for the same reason as `recurrence`: second-order MAML differentiates this loop,
    and plain autodiff would accumulate the [4H, H] kernel's gradient inside the loop, one
    read-modify-write per time step. Here the transposed loop (forward in time) computes only the
    per-step cotangents, and the kernel's cotangent is one [4H, T*B] x [T*B, H] matmul after it."""
    return _reverse_loop(w_ht, inputs, keep_carries=False)


def _backward_loop_fwd(w_ht, inputs):
    dz, carries = _reverse_loop(w_ht, inputs)
    return dz, (w_ht, inputs, dz, carries)


def _backward_loop_bwd(res, ct_dz):
    w_ht, inputs, dz, carries = res

    def step(ct_out, x):
        ct_dz_t, carry, inp = x
        _, vjp = jax.vjp(lambda cr, ip: _bwd_step(w_ht, cr, ip), carry, inp)  # w_ht held fixed
        ct_carry, ct_inp = vjp((ct_out, ct_dz_t))
        return ct_carry, (ct_inp, ct_out[0])

    zero = jnp.zeros_like(carries[0][0])
    # forward in time: the carry leaving step t (the reverse loop's order) enters step t - 1
    _, (ct_inputs, ct_new_dh) = jax.lax.scan(step, (zero, zero), (ct_dz, carries, inputs))
    ct_w_ht = jnp.einsum("tbg,tbh->gh", dz, ct_new_dh)  # new_dh_t = dz_t @ w_ht, for all steps at once
    return ct_w_ht, ct_inputs


backward_loop.defvjp(_backward_loop_fwd, _backward_loop_bwd)


def _recurrence_bwd(res, cts):
    w_h, hs, cs, acts = res
    dhs, dcs, dacts = cts
    dz = backward_loop(w_h.T, (dhs, dcs, dacts, cs, _shift(cs), acts))
    # The recurrent kernel's gradient for all steps at once: [H, T*B] x [T*B, 4H].
    dw_h = jnp.einsum("tbh,tbg->hg", _shift(hs), dz)
    return dz, dw_h


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def lstm(x, w_i, w_h, b):
    """One LSTM layer over [N, T, E] inputs, zero initial state -> hidden states [N, T, H]."""
    xg = jnp.einsum("nte,eg->tng", x, w_i) + b  # hoisted input projection, time-major
    hs, _, _ = recurrence(xg, w_h)
    return jnp.swapaxes(hs, 0, 1)


def lstm_from(x, w_i, w_h, b, carry):
    """The same layer from a given state: carry (c, h) [N, H] each -> (final (c, h), hidden states [N, T, H]).

    For sampling one step at a time with the state carried (plain autodiff; training uses `lstm`)."""
    xg = jnp.einsum("nte,eg->tng", x, w_i) + b

    def step(ch, x_t):
        h, c, _ = _cell(x_t, ch[1], ch[0], w_h)
        return (c, h), h

    carry, hs = jax.lax.scan(step, tuple(carry), xg)
    return carry, jnp.swapaxes(hs, 0, 1)


class FastLSTM(nn.Module):
    """Drop-in for `nn.RNN(nn.OptimizedLSTMCell(hidden))` over [N, T, E]: same parameters, same outputs."""

    hidden: int
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    recurrent_kernel_init: nn.initializers.Initializer = nn.initializers.orthogonal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x, carry=None):
        """Hidden states [N, T, H] from a zero state; with `carry` ((c, h), as OptimizedLSTMCell's),
        (final carry, hidden states) from that state instead."""
        h0 = jnp.zeros(x.shape[:-2] + (self.hidden,), x.dtype)
        w_i, w_h, b = [], [], []
        for gate in GATES:  # created in OptimizedLSTMCell's order, so initialization matches too
            w_i.append(DenseParams(self.hidden, use_bias=False, kernel_init=self.kernel_init,
                                   bias_init=self.bias_init, name=f"i{gate}")(x)[0])
            k, bias = DenseParams(self.hidden, use_bias=True, kernel_init=self.recurrent_kernel_init,
                                  bias_init=self.bias_init, name=f"h{gate}")(h0)
            w_h.append(k)
            b.append(bias)
        cat = lambda ws: jnp.concatenate(ws, axis=-1)
        if carry is not None:
            return lstm_from(x, cat(w_i), cat(w_h), cat(b), carry)
        return lstm(x, cat(w_i), cat(w_h), cat(b))
