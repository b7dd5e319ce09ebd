"""The benchmark's object classes as polygons in a unit box ``[-1, 1]^2`` (y up).

Each class is a function ``(rng) -> list of parts``; a part is ``(polygon, is_hole)``. The object's mask is
the union of the filled parts minus the holes; outlines are drawn from the mask, so overlapping parts (a
cloud's bumps) give one clean contour. Shapes vary within a class (proportions, point counts): a class is a
family, not a template.
"""
from __future__ import annotations

import math
import random
from typing import Callable

Polygon = list[tuple[float, float]]
Part = tuple[Polygon, bool]


def _regular(n: int, r: float = 1.0, phase: float = 0.0) -> Polygon:
    return [(r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 24) -> Polygon:
    return [(cx + r * math.cos(a0 + (a1 - a0) * k / (n - 1)), cy + r * math.sin(a0 + (a1 - a0) * k / (n - 1)))
            for k in range(n)]


def circle(rng):
    return [(_regular(48), False)]


def square(rng):
    return [([(-1, -1), (1, -1), (1, 1), (-1, 1)], False)]


def triangle(rng):
    apex = rng.uniform(-0.3, 0.3)
    return [([(-1, -0.85), (1, -0.85), (apex, 1)], False)]


def star(rng):
    n = rng.choice([5, 5, 6])
    inner = rng.uniform(0.38, 0.5)
    pts = []
    for k in range(2 * n):
        r = 1.0 if k % 2 == 0 else inner
        a = math.pi / 2 + math.pi * k / n
        pts.append((r * math.cos(a), r * math.sin(a)))
    return [(pts, False)]


def hexagon(rng):
    return [(_regular(6, phase=rng.choice([0.0, math.pi / 6])), False)]


def pentagon(rng):
    return [(_regular(5, phase=math.pi / 2), False)]


def diamond(rng):
    w = rng.uniform(0.55, 0.8)
    return [([(0, 1), (w, 0), (0, -1), (-w, 0)], False)]


def cross(rng):
    t = rng.uniform(0.28, 0.38)
    return [([(-t, 1), (t, 1), (t, t), (1, t), (1, -t), (t, -t), (t, -1), (-t, -1), (-t, -t), (-1, -t), (-1, t),
              (-t, t)], False)]


def heart(rng):
    pts = []
    for k in range(48):
        a = 2 * math.pi * k / 48
        x = 16 * math.sin(a) ** 3
        y = 13 * math.cos(a) - 5 * math.cos(2 * a) - 2 * math.cos(3 * a) - math.cos(4 * a)
        pts.append((x / 17, (y + 2) / 17))
    return [(pts, False)]


def crescent(rng):
    off = rng.uniform(0.45, 0.65)
    return [(_regular(48), False), ([(x + off, y + 0.1) for x, y in _regular(48, 0.95)], True)]


def ring(rng):
    inner = rng.uniform(0.45, 0.62)
    return [(_regular(48), False), (_regular(48, inner), True)]


def arrow(rng):
    shaft = rng.uniform(0.2, 0.3)
    head = rng.uniform(0.15, 0.35)
    return [([(-1, -shaft), (head, -shaft), (head, -0.8), (1, 0), (head, 0.8), (head, shaft), (-1, shaft)], False)]


def trapezoid(rng):
    top = rng.uniform(0.35, 0.6)
    return [([(-1, -0.7), (1, -0.7), (top, 0.7), (-top, 0.7)], False)]


def semicircle(rng):
    return [(_arc(0, -0.45, 1, 0, math.pi, 32), False)]


def lightning_bolt(rng):
    return [([(-0.15, 1), (0.55, 1), (0.15, 0.2), (0.6, 0.2), (-0.35, -1), (-0.05, -0.1), (-0.5, -0.1)], False)]


def house(rng):
    eave = rng.uniform(0.05, 0.2)
    return [([(-0.75, -1), (0.75, -1), (0.75, 0.15), (0.75 + eave, 0.15), (0, 1), (-0.75 - eave, 0.15),
              (-0.75, 0.15)], False)]


def tree(rng):
    trunk = rng.uniform(0.12, 0.2)
    return [([(-trunk, -1), (trunk, -1), (trunk, -0.55), (0.85, -0.55), (0.35, 0.05), (0.65, 0.05), (0, 1),
              (-0.65, 0.05), (-0.35, 0.05), (-0.85, -0.55), (-trunk, -0.55)], False)]


def hourglass(rng):
    waist = rng.uniform(0.08, 0.2)
    return [([(-0.8, 1), (0.8, 1), (waist, 0), (0.8, -1), (-0.8, -1), (-waist, 0)], False)]


def crown(rng):
    spikes = rng.choice([3, 3, 5])
    pts = [(-1, -0.8), (1, -0.8)]
    for k in range(2 * spikes + 1):
        x = 1 - 2 * k / (2 * spikes)
        y = 0.9 if k % 2 == 0 else 0.05
        pts.append((x, y))
    return [(pts, False)]


def cloud(rng):
    lift = rng.uniform(-0.1, 0.15)
    bumps = [(-0.55, -0.2, 0.42), (0.0, 0.15 + lift, 0.55), (0.55, -0.15, 0.42)]
    parts = [([(cx + x, cy + y) for x, y in _regular(36, r)], False) for cx, cy, r in bumps]
    parts.append(([(-0.55, -0.62), (0.55, -0.57), (0.55, -0.2), (-0.55, -0.2)], False))
    return parts


SHAPES: dict[str, Callable[[random.Random], list[Part]]] = {
    'circle': circle, 'square': square, 'triangle': triangle, 'star': star, 'hexagon': hexagon,
    'pentagon': pentagon, 'diamond': diamond, 'cross': cross, 'heart': heart, 'crescent': crescent,
    'ring': ring, 'arrow': arrow, 'trapezoid': trapezoid, 'semicircle': semicircle,
    'lightning bolt': lightning_bolt, 'house': house, 'tree': tree, 'hourglass': hourglass, 'crown': crown,
    'cloud': cloud,
}
#: classes whose look survives any rotation; the others are only tilted a little
ROTATION_FREE = {'circle', 'ring', 'cross', 'star', 'crescent', 'arrow', 'cloud'}
