import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from scaleguard.errors import ConfigError  # noqa: E402
from scaleguard.ladder import LadderSpec, RungSpec, load_spec  # noqa: E402

GOOD = """
name: t
rungs:
  - {layers: 1, width: 32}
  - {layers: 2, width: 64, tokens: 2M}
corpus: {max_bytes: 1M}
peak_flops: 1TFLOP/s
"""


def _write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_spec_with_human_units_and_defaults(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert [r.name for r in spec.rungs] == ["L1-W32", "L2-W64"]
    assert spec.rungs[1].tokens == 2e6 and spec.corpus.max_bytes == 1e6
    assert spec.peak_flops == 1e12 and spec.device_peak_flops() == 1e12
    assert spec.device == "cpu" and spec.precision == "fp32" and spec.tokens_per_param == 20
    assert spec.next_rung() == RungSpec(layers=2, width=128)
    # The learning rate scales as 1/width from base_width (64).
    assert spec.learning_rate(spec.rungs[0]) == pytest.approx(2 * spec.learning_rate(spec.rungs[1]))


def test_peak_from_the_hardware_catalog():
    spec = LadderSpec.model_validate({"rungs": [{"layers": 1, "width": 32}], "device": "cuda",
                                      "precision": "bf16", "hardware": "h100-sxm"})
    assert spec.device_peak_flops() == pytest.approx(989.4e12)


def test_fingerprint_follows_what_decides_the_result():
    base = {"rungs": [{"layers": 1, "width": 32}]}
    spec = LadderSpec.model_validate(base)
    rung = spec.rungs[0]
    same = LadderSpec.model_validate({**base, "log_every": 1, "eval_every": 7, "name": "x"})
    assert same.fingerprint(rung) == spec.fingerprint(rung)
    for change in ({"seed": 1}, {"optimizer": {"lr": 1e-3}}, {"batch_size": 4},
                   {"corpus": {"max_bytes": 1e6}}, {"model": {"block_size": 32}}):
        assert LadderSpec.model_validate({**base, **change}).fingerprint(rung) != \
            spec.fingerprint(rung), change


@pytest.mark.parametrize("text, message", [
    ("rungs: [{layers: 1, width: 30}]", r"spec.yaml: \(top level\): rung 'L1-W30': width 30 is "
                                        r"not a multiple of model.head_dim 16$"),
    ("rungs: [{layers: 1, width: 32}, {layers: 1, width: 32}]",
     r"rung names must be unique; 'L1-W32' repeats"),
    ("rungs: [{layers: 1, width: 32}]\nprecision: fp16", r"fp16 needs device cuda"),
    ("rungs: [{layers: 1, width: 32}]\ndevice: tpu", r"spec.yaml: device: Input should be 'cpu' or "
                                                      r"'cuda' \(got 'tpu'\)"),
    ("rungs: [{layers: 1, width: 32}]\nlearning_rate: 1", r"spec.yaml: learning_rate: unknown "
                                                           r"field$"),
    ("rungs: [{layers: 0, width: 32}]", r"spec.yaml: rungs\[0\].layers: Input should be greater"),
    ("rungs: []", r"spec.yaml: rungs: .*at least 1 item"),
    ("rungs: [{layers: 1, width: 32, tokens: 5 parsecs}]", r"spec.yaml: rungs\[0\].tokens: "),
    ("rungs: [{layers: 1, width: 32}]\noptimizer: {lr: -1}", r"spec.yaml: optimizer.lr: "),
    ("- just\n- a list", r"spec.yaml: expected a mapping with at least 'rungs' at the top level, "
                         r"got list"),
    ("rungs: [{layers: 1, width: 32}\n", r"spec.yaml: line \d+: not valid YAML"),
    ("", r"spec.yaml: the ladder spec is empty"),
])
def test_bad_specs_name_file_and_field(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_spec(_write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: no such ladder spec file"):
        load_spec(tmp_path / "nope.yaml")


@settings(max_examples=40, deadline=None)
@given(layers=st.integers(-3, 300), width=st.integers(-8, 70000),
       lr=st.floats(allow_nan=True, allow_infinity=True))
def test_any_numbers_give_a_spec_or_a_config_error(tmp_path_factory, layers, width, lr):
    path = tmp_path_factory.mktemp("s") / "spec.yaml"
    path.write_text(f"rungs: [{{layers: {layers}, width: {width}}}]\noptimizer: {{lr: {lr}}}\n")
    try:
        spec = load_spec(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert spec.rungs[0].layers >= 1 and spec.rungs[0].width % spec.model.head_dim == 0
        assert 0 < spec.optimizer.lr <= 1


def test_package_exports_what_all_says():
    import scaleguard.ladder as ladder

    public = {n for n, v in vars(ladder).items()
              if not n.startswith("_") and type(v).__name__ != "module"}
    assert public == set(ladder.__all__)
