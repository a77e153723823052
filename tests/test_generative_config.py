"""The generative models' configs share the agents' config style (``agents_zoo.core.config.Config``):
documented fields, one-line errors for bad values, did-you-mean for unknown keys, JSON round trips,
and the same ``--config`` / ``--list-config`` on the command line."""

from __future__ import annotations

import dataclasses
import json

import pytest

from agents_zoo.cli import main
from agents_zoo.core.config import AgentConfig, Config
from generative.cyclegan import CycleGANConfig
from generative.dbvae import DebiasingVAEConfig
from generative.gan import GANConfig
from generative.vae import VAEConfig

CONFIGS = (VAEConfig, GANConfig, CycleGANConfig, DebiasingVAEConfig)


@pytest.mark.parametrize("config_class", CONFIGS)
def test_every_generative_config_is_a_documented_config(config_class):
    assert issubclass(config_class, Config) and not issubclass(config_class, AgentConfig)
    rows = config_class.describe()
    assert [name for name, _, _ in rows] == config_class.field_names()
    assert all(doc and "\n" not in doc for _, doc, _ in rows), rows


@pytest.mark.parametrize("config_class", CONFIGS)
def test_round_trip_through_to_dict_and_json(config_class):
    config = config_class()
    saved = json.loads(json.dumps(config.to_dict()))  # tuples come back as lists
    assert config_class.from_dict(saved) == config
    assert config_class.from_saved(saved) == config
    assert config.replace().to_dict() == config.to_dict()


@pytest.mark.parametrize("config_class, changes, expected", [
    (VAEConfig, {"architecture": "rnn"}, "architecture must be one of 'mlp', 'cnn', got 'rnn'"),
    (VAEConfig, {"reconstruction_loss": "l1"}, "reconstruction_loss must be one of 'mse', 'bce', got 'l1'"),
    (VAEConfig, {"latent_dim": 0}, "latent_dim must be >= 1, got 0"),
    (VAEConfig, {"num_classes": -1}, "num_classes must be >= 0, got -1"),
    (VAEConfig, {"beta": -0.5}, "beta must be in [0.0, inf), got -0.5"),
    (VAEConfig, {"image_shape": (3, 64)}, "image_shape must be (C, H, W), a tuple of 3 positive ints, got (3, 64)"),
    (VAEConfig, {"filters": ()}, "filters must be a non-empty tuple of positive ints, got ()"),
    (VAEConfig, {"image_shape": (3, 30, 30)}, "needs H and W divisible by 4, got image_shape (3, 30, 30)"),
    (GANConfig, {"loss_mode": "wgan"}, "loss_mode must be one of 'bce', 'lsgan', 'hinge', got 'wgan'"),
    (GANConfig, {"discriminator_normalization": "layer"}, "discriminator_normalization must be one of"),
    (GANConfig, {"generator_filters": 0}, "generator_filters must be >= 1, got 0"),
    (GANConfig, {"real_label": 0.0}, "real_label must be in (0.0, 1.0], got 0.0"),
    (GANConfig, {"beta_1": 1.0}, "beta_1 must be in [0.0, 1.0), got 1.0"),
    (GANConfig, {"discriminator_learning_rate": -1.0}, "discriminator_learning_rate must be in (0, inf), got -1.0"),
    (GANConfig, {"minibatch_std": 1}, "minibatch_std must be true or false, got 1"),
    (GANConfig, {"image_shape": (3, 48, 48)}, "GAN image height must be 4 times a power of two (>= 8), got 48"),
    (GANConfig, {"image_shape": (3, 32, 64)}, "image_shape must be square (C, H, H), got (3, 32, 64)"),
    (CycleGANConfig, {"loss_mode": "wgan"}, "loss_mode must be one of 'bce', 'lsgan', 'hinge', got 'wgan'"),
    (CycleGANConfig, {"depth": 0}, "depth must be >= 1, got 0"),
    (CycleGANConfig, {"source_shape": (0, 64, 64)}, "source_shape must be (C, H, W), a tuple of 3 positive ints"),
    (CycleGANConfig, {"target_shape": (3, 32, 32)}, "source and target must have the same H and W"),
    (CycleGANConfig, {"source_shape": (1, 64, 64)}, "identity_weight=5.0 needs equal channels"),
    (CycleGANConfig, {"cycle_weight": -1.0}, "cycle_weight must be in [0.0, inf), got -1.0"),
    (DebiasingVAEConfig, {"num_bins": 0}, "num_bins must be >= 1, got 0"),
    (DebiasingVAEConfig, {"smoothing": 0.0}, "smoothing must be in (0, inf), got 0.0"),
    (DebiasingVAEConfig, {"filters": (4, 0)}, "filters must be a non-empty tuple of positive ints, got (4, 0)"),
    (DebiasingVAEConfig, {"image_shape": (3, 12, 12)}, "needs H and W divisible by 8"),
])
def test_a_bad_value_is_one_line_naming_it_and_what_was_expected(config_class, changes, expected):
    for make in (lambda: config_class(**changes), lambda: config_class.build(**changes)):
        with pytest.raises(ValueError) as error:
            make()
        message = str(error.value)
        assert expected in message and "\n" not in message, message


@pytest.mark.parametrize("config_class, key, meant", [
    (VAEConfig, "latnt_dim", "latent_dim"), (GANConfig, "loss", "loss_mode"),
    (CycleGANConfig, "cycle_wieght", "cycle_weight"), (DebiasingVAEConfig, "kl_wieght", "kl_weight"),
])
def test_an_unknown_key_suggests_the_closest(config_class, key, meant):
    with pytest.raises(ValueError, match=rf"unknown setting '{key}' for {config_class.__name__}; did you mean "
                                         rf"'{meant}'\?") as error:
        config_class.from_dict({key: 1})
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="did you mean"):
        config_class.parse_cli_value(key, "1")


def test_json_values_of_the_wrong_type_are_refused():
    with pytest.raises(ValueError, match=r"beta must be a number, got 'x' \(str\)"):
        VAEConfig.from_dict({"beta": "x"})
    with pytest.raises(ValueError, match=r"image_shape must be a list, got 3 \(int\)"):
        VAEConfig.from_dict({"image_shape": 3})
    with pytest.raises(ValueError, match="latent_dim must be a finite number, got inf"):
        GANConfig.from_dict({"latent_dim": float("inf")})
    assert VAEConfig.from_dict({"latent_dim": 4.0}).latent_dim == 4  # JSON may write an int as 4.0


def test_cli_values_are_typed_by_the_field():
    assert VAEConfig.parse_cli_value("filters", "[16,32]") == [16, 32]
    assert VAEConfig.parse_cli_value("filters", "16") == [16]
    assert VAEConfig.parse_cli_value("beta", "2") == 2.0
    assert VAEConfig.parse_cli_value("architecture", "mlp") == "mlp"
    config = VAEConfig.build(filters=VAEConfig.parse_cli_value("filters", "[16,32]"))
    assert config.filters == (16, 32)


def test_gan_files_from_before_discriminator_normalization_are_upgraded_only_when_read_back():
    saved = {k: v for k, v in GANConfig().to_dict().items()
             if k not in ("discriminator_normalization", "minibatch_std", "augment")}
    saved["discriminator_batch_norm"] = False
    config = GANConfig.from_saved(saved)
    assert (config.discriminator_normalization, config.minibatch_std, config.augment) == ("none", False, False)
    with pytest.raises(ValueError, match="unknown setting 'discriminator_batch_norm'"):
        GANConfig.from_dict(saved)  # not a setting one may give today
    with pytest.raises(ValueError, match="discriminator_batch_norm must be true or false, got 'yes'"):
        GANConfig.from_saved({**saved, "discriminator_batch_norm": "yes"})


def test_build_refuses_another_config_class():
    with pytest.raises(TypeError, match="expected a VAEConfig, got a GANConfig"):
        VAEConfig.build(GANConfig())
    with pytest.raises(TypeError, match="expected a VAEConfig, got a AgentConfig"):
        VAEConfig.build(AgentConfig())


def test_agent_config_keeps_its_settings():
    assert AgentConfig.field_names() == ["n_envs", "policy_hidden_sizes", "activation", "detect_nonfinite",
                                         "compute_dtype"]
    assert AgentConfig(policy_hidden_sizes=[]).policy_hidden_sizes == ()
    with pytest.raises(ValueError, match=r"policy_hidden_sizes must be a tuple of positive ints, got \(0,\)"):
        AgentConfig(policy_hidden_sizes=(0,))
    assert dataclasses.is_dataclass(AgentConfig)


# ----------------------------------------------------------------------------- command line
def test_generative_list_config_shows_the_models_settings(capsys):
    assert main(["generative", "train", "gan", "--list-config"]) == 0
    out = capsys.readouterr().out
    for name, doc, default in GANConfig.describe():
        assert f"  {name:<28} {default!r:<18} {doc}" in out


@pytest.mark.parametrize("config, expected", [
    (["latnt_dim=3"], "unknown setting 'latnt_dim' for VAEConfig; did you mean 'latent_dim'?"),
    (["beta"], "--config expects KEY=VALUE, got 'beta'"),
])
def test_generative_config_errors_come_before_any_work(tmp_path, capsys, config, expected):
    out = tmp_path / "out"
    assert main(["generative", "train", "vae", "--out", str(out), "--quiet", "--config", *config]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agents-zoo generative train: error:") and expected in lines[0]
    assert not out.exists()


def test_generative_train_needs_out(capsys):
    assert main(["generative", "train", "vae"]) == 2
    assert "needs --out DIR" in capsys.readouterr().err


def test_generative_config_reaches_the_model_and_cannot_change_the_frame_shape(tmp_path, capsys):
    import generative

    common = ["generative", "train", "vae", "--architecture", "mlp", "--envs", "Pong", "--steps", "1",
              "--batch-size", "4", "--frames", "8", "--image-size", "16", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "shape"), "--config", "image_shape=[3,32,32]"]) == 2
    assert "--config image_shape=... is set from the collected frames" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "run"), "--config", "hidden_units=8", "beta=2"]) == 0
    config = generative.load_model(tmp_path / "run" / "model.zip").config
    assert (config.hidden_units, config.beta, config.image_shape) == (8, 2.0, (3, 16, 16))
    summary = json.loads((tmp_path / "run" / "config.json").read_text())
    assert summary["config"] == config.to_dict()
