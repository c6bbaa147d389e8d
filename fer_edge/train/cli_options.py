"""The `fer-edge train` options, generated from the settings' fields (fer_edge.train.settings): one click option per
setting, with its type, default, choices, range and help. A value converts and is checked by the setting itself, so
a bad one is the same one-line error a config file gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from fer_edge.registry import Registry
from fer_edge.train.settings import AS_FIELD, Setting, cli_settings


class _Checked:
    """Mixin for a click type: values go through ``Setting.coerce`` (its one-line error on a bad one); the click
    base class only shows the metavar, choices and range in --help."""

    def __init__(self, setting: Setting, *args: Any, **kwargs: Any) -> None:
        self.setting = setting
        super().__init__(*args, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.setting.coerce(value)


class _Choice(_Checked, click.Choice):
    pass


class _IntRange(_Checked, click.IntRange):
    pass


class _FloatRange(_Checked, click.FloatRange):
    pass


class _Int(_Checked, click.types.IntParamType):
    pass


class _Float(_Checked, click.types.FloatParamType):
    pass


def _click_type(s: Setting) -> click.ParamType | None:
    m = s.meta
    if m.folder:
        return click.Path(file_okay=False)
    choices = s.choice_names()
    if choices is not None and s.kind is str:
        return _Choice(s, choices, case_sensitive=not isinstance(m.choices, Registry))
    if s.kind in (int, float) and (m.low is not None or m.high is not None):
        return (_IntRange if s.kind is int else _FloatRange)(s, m.low, m.high, m.low_open, m.high_open)
    if s.kind in (int, float):
        return (_Int if s.kind is int else _Float)(s)
    return None  # text (paths, comma lists: checked with the rest of the config)


def option(s: Setting) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of one setting: --name-with-dashes (``--on/--off`` for a boolean with a ``negative``)."""
    m = s.meta
    default = s.default if m.cli_default is AS_FIELD else m.cli_default
    decls = [f"{s.flag}/--{m.negative}" if m.negative else s.flag, s.name]
    text = f"{m.help}  [default: {m.default_text}]" if m.default_text else m.help
    kw: dict[str, Any] = {"help": text or None, "metavar": m.metavar}
    if s.kind is bool:
        kw.update(default=default, show_default=bool(m.negative))
        if not m.negative:
            kw["is_flag"] = True
    elif s.kind is dict:
        kw.update(multiple=True)
    else:
        if isinstance(default, tuple):
            default = ",".join(default)
        kw.update(type=_click_type(s), default=default, show_default=default not in (None, ""))
    return click.option(*decls, **kw)


def setting_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one option per command-line setting of ``cls`` (a nested settings class's in its place),
    in field order."""
    options = [option(s) for s in cli_settings(cls)]

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(options):
            command = opt(command)
        return command

    return apply
