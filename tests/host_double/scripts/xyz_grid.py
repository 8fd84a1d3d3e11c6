"""Double of the built-in scripts/xyz_grid.py: AxisOption, axis_options and the Script class.

``apply`` is called on a shallow copy of ``p`` for each cell, like the host's ``cell()``."""

from copy import copy

import modules.scripts as scripts


def format_value_add_label(p, opt, x):
    if type(x) is float:
        x = round(x, 8)
    return f"{opt.label}: {x}"


class AxisOption:
    def __init__(self, label, type, apply, format_value=format_value_add_label, confirm=None, cost=0.0,
                 choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


axis_options = [AxisOption("Nothing", str, lambda p, x, xs: None)]


def run_cell(p, opt, value, values, process):
    """One cell of the grid: copy p, apply the axis value, process."""
    pc = copy(p)
    pc.styles = pc.styles[:]
    opt.apply(pc, opt.type(value), values)
    return process(pc)


class Script(scripts.Script):
    def title(self):
        return "X/Y/Z plot"
