"""The public face: what ``from flowforge import *`` gives, and what ``import flowforge`` costs."""

import subprocess
import sys

import flowforge

# Every function and class the course notebook defines in its library cells (its own
# FlowLayer, layers, checker, adapter, flow, training loop and plot helpers); a
# student's notebook that imports them from flowforge instead uses exactly these.
NOTEBOOK_NAMES = [
    "detect_device",
    "FlowLayer",
    "isclose",
    "num_samples",
    "log_det_jacobian",
    "scalar_to_vector",
    "test_flow_layer",
    "Scale",
    "Translate",
    "AffineCoupling",
    "block",
    "Split",
    "Merge",
    "Swap",
    "SequentialFlow",
    "Multivariate",
    "plot_log_prob",
    "plot_samples",
    "plot_log_prob_and_samples",
    "NormalizingFlow",
    "train",
    "plot_inverse_samples",
    "part_model",
    "plot_model_steps",
]
WORKBENCH_DEPENDENCIES = ("matplotlib", "sklearn", "safetensors", "tqdm")


def test_star_import_gives_every_name_the_course_notebook_uses():
    namespace: dict = {}
    exec("from flowforge import *", namespace)
    assert [name for name in NOTEBOOK_NAMES if name not in namespace] == []
    assert all(callable(namespace[name]) for name in NOTEBOOK_NAMES)


def test_all_is_sorted_short_and_every_name_resolves():
    assert flowforge.__all__ == sorted(flowforge.__all__)
    assert len(flowforge.__all__) <= 40
    assert set(NOTEBOOK_NAMES) <= set(flowforge.__all__)
    for name in flowforge.__all__:
        assert getattr(flowforge, name) is not None
    assert set(flowforge.__all__) <= set(dir(flowforge))


def _fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_flowforge_loads_no_workbench_dependency():
    """Not even tqdm, which ``import torch`` alone loads (``torch.hub`` binds it for its
    download bars) when it is installed, as it is here."""
    names = repr(WORKBENCH_DEPENDENCIES)
    assert _fresh("import sys, torch\nprint('tqdm' in sys.modules)") == "True"
    loaded = "import sys, flowforge, flowforge.training, flowforge.layers\n"
    assert _fresh(loaded + f"print(sorted(m for m in {names} if m in sys.modules))") == "[]"
    # torch imported first: flowforge adds none of them
    code = (
        "import sys, numpy, torch\n"
        f"before = {{m for m in {names} if m in sys.modules}}\n"
        "import flowforge, flowforge.training, flowforge.layers\n"
        f"print(sorted(m for m in {names} if m in sys.modules and m not in before))\n"
    )
    assert _fresh(code) == "[]"


def test_after_import_flowforge_tqdm_and_torch_hub_s_bars_are_as_without_it():
    code = (
        "import flowforge, torch.hub, tqdm, tqdm.auto\n"
        "bar = torch.hub.tqdm(total=3, disable=True)\n"
        "print(type(bar).__module__, type(bar).__name__)\n"
    )
    assert _fresh(code) == "tqdm.std tqdm"
    # tqdm not importable: torch.hub's own fallback, as torch alone would give
    code = (
        "import sys, flowforge, torch.hub\nsys.modules['tqdm'] = None\n"
        "print(type(torch.hub.tqdm(total=3, disable=True)).__name__)\n"
    )
    assert _fresh(code) == "_Faketqdm"


def test_the_workbench_names_are_the_workbench_s_own_objects():
    from flowforge.workbench.figures import plots

    for name in ("plot_log_prob", "plot_samples", "part_model", "plot_model_steps"):
        assert getattr(flowforge, name) is getattr(plots, name)


def test_the_library_trains_with_progress_when_no_workbench_dependency_is_installed():
    """With matplotlib, scikit-learn, safetensors and tqdm all unimportable (as after
    ``pip install flowforge`` without extras), ``fit`` and ``train`` still run, and
    ``progress=True`` prints one text line per epoch instead of tqdm's bar."""
    code = (
        "import sys\n"
        f"for name in {WORKBENCH_DEPENDENCIES!r}:\n"
        "    sys.modules[name] = None  # 'import name' raises ImportError\n"
        "import torch\n"
        "from flowforge import *\n"
        "torch.manual_seed(0)\n"
        "x = torch.randn(256, 2)\n"
        "model = NormalizingFlow(Multivariate(2), Split(), AffineCoupling(block(1, 1, 4)),"
        " Merge())\n"
        "loader = torch.utils.data.DataLoader(x, batch_size=64)\n"
        "losses = train(model, loader, num_epochs=2, progress=True)\n"
        "history = fit(model, x, validation=x[:64], epochs=3, progress=True)\n"
        "print(len(losses), len(history.train_nll))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "3"]
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == [
        "epoch 1/2",
        "epoch 2/2",
        "epoch 1/3",
        "epoch 2/3",
        "epoch 3/3",
    ]
    assert all("nll " in line for line in lines)
    assert all("heldout " in line for line in lines[2:])
