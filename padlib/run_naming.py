"""Where a run directory goes: a path made of what the run is, so that every sweep point has its own.

    <base>/<arch>/<padding>[/<settings>]/seed<N>

``padding`` is the mode's label (``distribution(variant=mean_reflect)``) written as a safe file name
(``distribution-variant=mean_reflect``). ``settings`` is the command line's overrides that change results
and are not already in the path, sorted (``trainer.epochs=5,trainer.optim.lr=0.1``); a run with none has
no such folder, so the default layout is ``<arch>/<padding>/seed<N>``. The path is a function of the
command line only: a restarted or requeued job, and the same sweep launched again, find the same
directory. docs/RUN_DIRECTORY.md describes the layout.

configs/config.yaml calls these through two OmegaConf resolvers, ``padlib.padding_dir`` and
``padlib.settings_dir``, which importing this module registers. A job may name its directory in another
process than the one that read the command line (submitit's jobs resolve ``hydra.sweep.subdir`` on the
node), so config.yaml also lists :class:`RunNaming` among Hydra's callbacks: Hydra sends its callbacks
with every job, and unpickling one imports this module there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from padlib.configcheck import RUNTIME_KEYS
from padlib.errors import PadlibError

# Overrides already in the path (arch, padding with its parameters, seed; the data set names the base
# directory), and ``experiment`` (an experiment file names its own directory, as demo and paper_sweep do).
IN_PATH = ("model", "model.name", "padding", "seed", "data", "data.name", "experiment")
# Characters a path component keeps as they are; anything else is replaced and a digest added, so two
# different values never share a directory.
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")
MAX_COMPONENT = 200  # under the 255 bytes file systems allow, with room for a digest
DIGEST_CHARS = 8


def safe_component(text: str) -> str:
    """``text`` as one path component: kept when it is made of safe characters and short, else the safe
    part (cut to length) followed by a short digest of ``text``."""
    safe = _UNSAFE.sub("_", text)
    if safe == text and len(text) <= MAX_COMPONENT and text not in ("", ".", ".."):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]
    return f"{safe[:MAX_COMPONENT - DIGEST_CHARS - 1]}-{digest}"


def padding_component(padding: Mapping[str, Any] | str) -> str:
    """The padding mode's label as a path component: ``zero``, ``distribution-variant=mean_reflect``."""
    from padlib.padding import get_padding  # torch: only when a run directory is named

    try:
        label = get_padding(dict(padding) if isinstance(padding, Mapping) else padding).label
    except PadlibError:
        # a mode that cannot be built: name the directory by what was asked; the trainer then reports it
        label = str(padding.get("mode") if isinstance(padding, Mapping) else padding)
    name, _, params = label.partition("(")
    return safe_component(name + (f"-{params.removesuffix(')')}" if params else ""))


def _is_in_path_or_runtime(key: str) -> bool:
    return key in IN_PATH or key.startswith("padding.") or key in RUNTIME_KEYS


def settings_items(overrides: Iterable[str]) -> list[str]:
    """The overrides that name a run's settings folder, as ``key=value``, sorted by key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    items = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if _is_in_path_or_runtime(key):
            continue
        if override.is_delete():
            items.append(f"~{key}")
        else:
            # '+key=v' and 'key=v' set the same value: one directory
            items.append(f"{key}={override.get_value_element_as_str()}")
    return sorted(items)


def settings_component(overrides: Iterable[str]) -> str:
    """The settings folder of a run: '' when the overrides set nothing beyond the path's own parts."""
    items = settings_items(overrides)
    return safe_component(",".join(items)) if items else ""


def _padding_dir(node: Any) -> str:
    return padding_component(_plain(node))


def _settings_dir(node: Any) -> str:
    return settings_component(_plain(node) or [])


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def register_resolvers() -> None:
    """Make ``${padlib.padding_dir:...}`` and ``${padlib.settings_dir:...}`` known to OmegaConf."""
    OmegaConf.register_new_resolver("padlib.padding_dir", _padding_dir, replace=True)
    OmegaConf.register_new_resolver("padlib.settings_dir", _settings_dir, replace=True)


class RunNaming(Callback):
    """The Hydra callback that carries this module (and so its resolvers) into every job's process."""


register_resolvers()
