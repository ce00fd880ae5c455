"""The arrival rate of one market over its window: spikes that decay over a baseline.

``rate(t) = sum over spikes of peak * exp(-(t - start) / decay) + baseline * rhythm(hour)``

The spikes are the market's opening (``[crowd.arrivals]``'s peak, the crowd's decay) and
every wave of the crowd that reaches the market within its window: a wave at a local
date-time once, a daily wave at a local time of day on every day of the window (the last
day of 11.11 is a one-off wave over daily evening ones). The baseline follows the crowd's
``rhythm``, a weight per local hour (the hour as the market's clock reads it at the
window's opening plus the time elapsed: a change of the clock within the event is not
followed). ``count`` integrates the rate (the budget rests on it), ``masses`` gives the
expected arrivals of one second by component, and ``place`` puts one arrival at its
millisecond within the second.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from lampo.domain.event import SaleEvent
from lampo.sim.scenario import Crowd

#: A spike is dropped once it has decayed this many times its decay time (e^-40 of its
#: peak: less than one arrival in 10^17).
_SPENT = 40.0


class Shape:
    """The arrival rate of ``market`` in ``event`` for ``crowd`` (per second)."""

    def __init__(self, event: SaleEvent, crowd: Crowd, market: str) -> None:
        window = event.windows[market]
        self.seconds = int(window.length.total_seconds())
        arrivals = crowd.arrivals.get(market)
        self.peak = arrivals.peak_per_second if arrivals else 0.0
        self.baseline = arrivals.baseline_per_second if arrivals else 0.0
        self.rhythm = crowd.rhythm
        zone = event.markets[market].zone
        opened = window.opens.astimezone(zone)
        self.hour0 = opened.hour * 3600 + opened.minute * 60 + opened.second
        #: (start second in the window, peak per second, decay seconds), by start
        spikes = [(0, self.peak, crowd.decay_seconds)] if self.peak else []
        for wave in crowd.waves:
            if wave.markets is not None and market not in wave.markets:
                continue
            peak = self.peak * wave.peak_factor
            if not peak:
                continue
            if wave.at is not None:
                starts = [wave.at]
            else:
                assert wave.daily is not None
                day, last = opened.date(), window.closes.astimezone(zone).date()
                starts = []
                while day <= last:
                    starts.append(datetime.combine(day, wave.daily))
                    day += timedelta(days=1)
            for local in starts:
                utc = local.replace(tzinfo=zone).astimezone(UTC)
                start = math.floor((utc - window.opens).total_seconds())
                if 0 <= start < self.seconds:
                    spikes.append((start, peak, wave.decay_seconds))
        self.spikes = sorted(spikes)

    def base(self, s: int) -> float:
        """The baseline's rate in second ``s`` of the window."""
        if self.rhythm is None:
            return self.baseline
        return self.baseline * self.rhythm[(self.hour0 + s) // 3600 % 24]

    def masses(self, s: int, active: list[tuple[int, float, float]]) -> list[float]:
        """The expected arrivals of second ``s`` per component: each spike of ``active``
        (the spikes started by ``s``, not yet spent), then the baseline."""
        out = []
        for start, peak, decay in active:
            t = s - start
            out.append(peak * decay * (math.exp(-t / decay) - math.exp(-(t + 1) / decay)))
        out.append(self.base(s))
        return out

    @staticmethod
    def place(rng: random.Random, decay: float | None) -> int:
        """The millisecond of an arrival within its second: a spike's following its
        decaying rate (``decay``), the baseline's (None) uniformly."""
        if decay is None:
            u = rng.random()
        else:
            u = -decay * math.log(1.0 - rng.random() * (1.0 - math.exp(-1.0 / decay)))
        return min(999, int(u * 1000))

    def count(self) -> float:
        """The expected arrivals over the whole window."""
        w = self.seconds
        total = sum(p * d * (1 - math.exp(-(w - start) / d)) for start, p, d in self.spikes)
        if self.rhythm is None:
            return total + self.baseline * w
        s = 0
        while s < w:  # hour by hour, as the local clock turns
            step = min(w - s, 3600 - (self.hour0 + s) % 3600)
            total += self.base(s) * step
            s += step
        return total


def spent(spike: tuple[int, float, float], s: int) -> bool:
    """Whether ``spike`` is over by second ``s`` (no arrival worth counting is left)."""
    return s - spike[0] > _SPENT * spike[2]
