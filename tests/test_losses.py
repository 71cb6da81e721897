"""The adversarial losses and penalties on critics whose gradients are known in closed form."""
import math

import pytest
import torch

from gansynth.training.losses import LossSettings, critic_loss, generator_loss, gradient_penalty


def settings(adversarial: str) -> LossSettings:
    return LossSettings(gp_weight=10.0, gp_target=1.0, drift=0.0, aux_weight_g=0.0, aux_weight_d=0.0,
                        adversarial=adversarial)


def linear_critic(slope: float):
    """f(x) = slope · (sum of x) / sqrt(n): its gradient has norm ``slope`` everywhere."""
    return lambda x: slope * x.flatten(1).sum(dim=1) / math.sqrt(x[0].numel())


@pytest.mark.parametrize("adversarial, penalty", [("wgan", (2.0 - 1.0) ** 2), ("logistic", 0.5 * 2.0 ** 2)])
def test_penalty_of_a_critic_with_slope_two(adversarial, penalty):
    real, fake = torch.randn(4, 2, 3, 5), torch.randn(4, 2, 3, 5)
    value = gradient_penalty(linear_critic(2.0), real, fake, settings(adversarial), torch.Generator())
    assert value.item() == pytest.approx(penalty, rel=1e-5)


def test_r1_looks_at_the_reals_only_and_draws_nothing():
    """R1 (logistic) is taken on the reals, so it uses no interpolation weights from the step's stream."""
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    real = torch.randn(4, 1, 2, 2)
    critic = lambda x: x.flatten(1).square().sum(dim=1)  # gradient 2x: depends on where it is taken
    value = gradient_penalty(critic, real, torch.zeros_like(real), settings("logistic"), generator)
    assert value.item() == pytest.approx(0.5 * (2 * real).flatten(1).square().sum(dim=1).mean().item(), rel=1e-5)
    assert torch.equal(generator.get_state(), state)


def test_logistic_losses_at_an_undecided_critic_are_log_two():
    zero, logits, labels = torch.zeros(3), torch.zeros(3, 5), torch.zeros(3, dtype=torch.long)
    g = generator_loss(zero, logits, labels, settings("logistic"), torch.zeros(3, 1), torch.zeros(3, 1))
    d = critic_loss(zero, zero, logits, labels, settings("logistic"))
    assert g.adversarial.item() == pytest.approx(math.log(2))
    assert d.adversarial.item() == pytest.approx(2 * math.log(2))
    # the generator's loss falls as the critic scores its fakes higher; the critic's rises with them
    better = generator_loss(zero + 2, logits, labels, settings("logistic"), torch.zeros(3, 1), torch.zeros(3, 1))
    assert better.adversarial < g.adversarial
    assert critic_loss(zero, zero + 2, logits, labels, settings("logistic")).adversarial > d.adversarial
