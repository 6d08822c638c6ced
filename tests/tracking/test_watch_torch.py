"""W&B's `watch(model)` with real PyTorch: gradient and parameter histograms every `log_freq` steps."""

from __future__ import annotations

import json

import pytest

import tracehouse as th

torch = pytest.importorskip("torch")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def _train(model: torch.nn.Module, steps: int, run: th.Run) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        run.log({"loss": loss.item()})


def _values(project: str, run_id: str, prefix: str) -> dict[int, dict[str, dict[str, object]]]:
    frame = th.query(
        f"SELECT step, key, value FROM run_values WHERE project = '{project}' AND run_id = '{run_id}' "
        f"AND startsWith(key, '{prefix}') ORDER BY step, key"
    )
    out: dict[int, dict[str, dict[str, object]]] = {}
    for step, key, value in frame.itertuples(index=False):
        out.setdefault(int(step), {})[str(key)] = json.loads(value)
    return out


def test_watch_logs_gradient_histograms_every_log_freq_backward_passes(th_env: th.Settings) -> None:
    model = _model()
    with th.init(project="watch") as run:
        th.watch(model, log_freq=3)
        _train(model, 7, run)
        last_gradient = model[2].weight.grad.clone()
    th.sync()
    logged = _values("watch", run.id, "gradients/")
    assert sorted(logged) == [2, 5]  # the 3rd and 6th backward passes, on the step they belong to
    names = {"gradients/0.weight", "gradients/0.bias", "gradients/2.weight", "gradients/2.bias"}
    assert set(logged[2]) == set(logged[5]) == names
    histogram = logged[5]["gradients/2.weight"]
    assert histogram["_type"] == "histogram" and len(histogram["values"]) == 64 and len(histogram["bins"]) == 65
    assert sum(histogram["values"]) == 8  # every element of the 1x8 weight's gradient
    assert not _values("watch", run.id, "parameters/")  # log="gradients" is the default
    assert last_gradient.numel() == 8


def test_watch_all_logs_parameters_too_with_their_real_values_and_the_graph(th_env: th.Settings) -> None:
    model = _model()
    with th.init(project="watch-all") as run:
        run.watch(model, log="all", log_freq=2, log_graph=True)
        _train(model, 4, run)
        weights = model[0].weight.detach().reshape(-1)
    th.sync()
    parameters = _values("watch-all", run.id, "parameters/")
    assert sorted(parameters) == [1, 3]
    histogram = parameters[3]["parameters/0.weight"]
    assert sum(histogram["values"]) == 32
    # the forward pass of step 3 saw the weights before that step's update: within the histogram's range
    assert histogram["bins"][0] <= float(weights.min()) + 0.5 and histogram["bins"][-1] >= float(weights.max()) - 0.5
    graph = _values("watch-all", run.id, "graph_0")[0]["graph_0"]
    assert graph["_type"] == "graph" and graph["parameters"] == 4 * 8 + 8 + 8 + 1
    assert [n["class"] for n in graph["nodes"]] == ["Sequential", "Linear", "ReLU", "Linear"]
    assert graph["nodes"][1]["parameters"] == {"weight": [8, 4], "bias": [8]}


def test_unwatch_and_finish_remove_the_hooks_and_a_second_model_gets_a_prefix(th_env: th.Settings) -> None:
    first, second = _model(), _model()
    with th.init(project="unwatch") as run:
        th.watch([first, second], log_freq=1)
        _train(first, 1, run)
        _train(second, 1, run)
        th.unwatch(first)
        _train(first, 1, run)
    th.sync()
    logged = _values("unwatch", run.id, "gradients/")
    assert "gradients/0.weight" in logged[0] and "gradients/graph_1.0.weight" in logged[1]
    assert 2 not in logged  # unwatched: the third step logged no histogram
    _train(second, 1, th.init(project="unwatch-after"))  # the finished run's hooks are gone: nothing raises
    th.finish()


def test_watch_refuses_what_it_cannot_watch(th_env: th.Settings) -> None:
    with pytest.raises(th.ConfigError, match="no active run"):
        th.watch(_model())
    with th.init(project="watch-bad"):
        with pytest.raises(th.ConfigError, match=r"torch.nn.Module, got dict"):
            th.watch({"not": "a model"})
        with pytest.raises(th.ConfigError, match="log_freq"):
            th.watch(_model(), log_freq=0)
        with pytest.raises(th.ConfigError, match="log"):
            th.watch(_model(), log="weights")
