"""The options and argument types the examples share: a bad value stops argparse with
``error: argument --limit: must be ...`` and exit status 2, before anything runs."""

import argparse
import math

import xpnn as xn


def device_arguments(parser):
    """--device and --backend, which every example takes."""
    parser.add_argument("--device", default="cpu",
                        help="'cpu', 'cuda', 'cuda:N', or array-api-strict's 'device1'")
    parser.add_argument("--backend", choices=xn.devices.BACKENDS, default=None,
                        help="array library; None: the device's own (numpy for cpu, "
                             "cupy for cuda)")


def _checked(convert, ok, rule):
    def parse(text):
        value = convert(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    parse.__name__ = convert.__name__  # argparse's "invalid int value: 'x'" for a non-number
    return parse


def int_at_least(low):
    """An argparse type: an integer >= ``low``."""
    return _checked(int, lambda value: value >= low, f"an integer >= {low}")


positive_int = int_at_least(1)
positive_float = _checked(float, lambda value: math.isfinite(value) and value > 0,
                          "a finite number > 0")
non_negative_float = _checked(float, lambda value: math.isfinite(value) and value >= 0,
                              "a finite number >= 0")
fraction = _checked(float, lambda value: 0 <= value < 1, "in [0, 1)")  # a dropout rate
