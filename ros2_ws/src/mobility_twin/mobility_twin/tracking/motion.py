"""The motion model of every track in the stack: a constant-velocity Kalman filter over (x, y, vx, vy).

One implementation of prediction (:func:`predict`, and its positions alone :func:`predict_positions`, used by the tracker, the local twin's publications and
the global twin) and of the measurement update (:func:`update`). Process noise is continuous white
acceleration on each axis, of spectral density ``q = accel_noise^2 * REFERENCE_PERIOD_S`` (m^2/s^3):

    F = [[I, dt I], [0, I]],   Q = q [[dt^3/3 I, dt^2/2 I], [dt^2/2 I, dt I]].

Over one 0.1 s frame period it adds the velocity variance ``(accel_noise * 0.1)^2`` that a discrete
white-acceleration model of ``accel_noise`` would; unlike that model, two steps of dt/2 add exactly what
one step of dt does, so a track's uncertainty does not depend on how many sensors' frames arrive between
two instants (a twin fed by ten sensors would otherwise believe its motion model ten times more).
"""

from __future__ import annotations

import functools

import numpy as np

from mobility_twin.tracking.gating import mahalanobis2_unchecked

_ADJUGATE_SIGNS = np.array([[1.0, -1.0], [-1.0, 1.0]])  # [[d, c], [b, a]] * this = the adjugate of [[a, b], [c, d]], transposed
REFERENCE_PERIOD_S = 0.1  # the frame period at which accel_noise has its discrete-model meaning


@functools.lru_cache(maxsize=64)
def transition(dt: float, accel_noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F, F', Q) of one step of ``dt`` seconds, read-only (kept for the next step as long: a sensor's frames
    come at its period; F' contiguous, a little faster to multiply by)."""
    q = accel_noise**2 * REFERENCE_PERIOD_S
    a, b, c = dt**3 / 3 * q, dt**2 / 2 * q, dt * q
    F = np.array([[1.0, 0.0, dt, 0.0], [0.0, 1.0, 0.0, dt], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    Q = np.array([[a, 0.0, b, 0.0], [0.0, a, 0.0, b], [b, 0.0, c, 0.0], [0.0, b, 0.0, c]])
    Ft = F.T.copy()
    F.flags.writeable = Ft.flags.writeable = Q.flags.writeable = False
    return F, Ft, Q


def position_variance(dt, accel_noise: float):
    """The position variance (per axis) the process noise adds over ``dt`` seconds (scalar or array)."""
    return accel_noise**2 * REFERENCE_PERIOD_S * np.asarray(dt, dtype=float) ** 3 / 3


def predict_positions(x: np.ndarray, dt) -> np.ndarray:
    """The positions (N, 2) of :func:`predict`'s states ``x`` (N, 4) ``dt`` seconds ahead (a float or an (N,)
    array, used as given), without the covariances: for searches that need only where each track would be."""
    return x[:, :2] + x[:, 2:4] * np.asarray(dt, dtype=float).reshape(-1, 1)


def predict(x: np.ndarray, P: np.ndarray, dt, accel_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """States ``x`` (N, 4) and covariances ``P`` (N, 4, 4) predicted ``dt`` seconds ahead: one ``dt`` for all
    (a float) or one per state (an (N,) array; negative steps count as zero)."""
    if isinstance(dt, float) or np.ndim(dt) == 0:
        F, Ft, Q = transition(float(dt), accel_noise)
        return x @ F.T, F @ P @ Ft + Q  # (x @ Ft would round some rows differently)
    dt = np.maximum(np.asarray(dt, dtype=float), 0.0)
    n = len(x)
    F = np.tile(np.eye(4), (n, 1, 1))
    F[:, 0, 2] = F[:, 1, 3] = dt
    q = accel_noise**2 * REFERENCE_PERIOD_S
    Q = np.zeros((n, 4, 4))
    for pos, vel in ((0, 2), (1, 3)):
        Q[:, pos, pos] = dt**3 / 3 * q
        Q[:, pos, vel] = Q[:, vel, pos] = dt**2 / 2 * q
        Q[:, vel, vel] = dt * q
    return np.einsum("nij,nj->ni", F, x), F @ P @ F.transpose(0, 2, 1) + Q


def update(x: np.ndarray, P: np.ndarray, z: np.ndarray, R: np.ndarray, *, nis: bool = False):
    """Kalman update of states ``x`` (N, 4), ``P`` (N, 4, 4) with measurements ``z`` (N, M) of covariance ``R``
    (N, M, M) of the state's first M components (M = 2: position; M = 4: position and velocity), i.e.
    ``H = [I_M 0]``. With the optimal gain ``K = P H' S^-1`` the Joseph form ``(I - KH) P (I - KH)' + K R K'``
    equals ``P - K H P``; that is what is computed (one product instead of five), then made symmetric.
    Returns (x, P), and with ``nis`` the normalised innovation squared ``y' S^-1 y`` of each position (N,).
    A diverged state (an input that slipped past validation) gives infs and NaNs, the caller's to drop: call it
    inside ``np.errstate`` where numpy's warnings of them are not wanted (the tracker enters one per frame)."""
    m = z.shape[1]
    y = z - x[:, :m]
    S = P[:, :m, :m] + R
    if m == 2:  # the 2x2 inverse in closed form (the common case: a position measured): adjugate / det
        det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
        S_inv = (S[:, ::-1, ::-1] * _ADJUGATE_SIGNS).transpose(0, 2, 1) / det[:, None, None]
    else:
        S_inv = np.linalg.inv(S)
    PH = P[:, :, :m]  # P H'
    w = S_inv @ y[:, :, None]  # S^-1 y: the gain times the innovation is P H' w
    P_new = P - (PH @ S_inv) @ P[:, :m, :]
    P_new += P_new.transpose(0, 2, 1)
    P_new *= 0.5
    out = x + (PH @ w)[:, :, 0], P_new
    if not nis:
        return out
    if m == 2:
        return (*out, (y[:, None, :] @ w)[:, 0, 0])
    return (*out, mahalanobis2_unchecked(y[:, :2], S[:, :2, :2])[0])
