"""The measurements of a trained run, one module per output file: each takes the model and its train and test
splits (data follow the model's device) and returns that file's content.

    weight_spectrum(model, train, test, cfg)    # spectrum.json: the weight Hessian (config["spectrum"])
    input_curvature(model, train, test, cfg)    # inputs.json: input gradients and input Hessians (config["inputs"])
    robustness(model, train, test, cfg)         # attack.json: accuracy under FGSM and PGD (an experiment's attack grid)

The steps of the same names (lbhessian.steps.spectrum, inputs, attack) only load a run, call one of these and
write the result. Built on the curvature engine (lbhessian.curvature) and the attacks (lbhessian.attacks).
"""

from lbhessian.measure.input_curvature import exact_input_spectrum, input_curvature, input_curvature_of
from lbhessian.measure.robustness import adversarial_accuracy, robustness
from lbhessian.measure.weight_spectrum import weight_spectrum, weight_spectrum_of

__all__ = [
    "adversarial_accuracy",
    "exact_input_spectrum",
    "input_curvature",
    "input_curvature_of",
    "robustness",
    "weight_spectrum",
    "weight_spectrum_of",
]
