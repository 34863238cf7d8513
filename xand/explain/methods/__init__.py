"""The attribution methods, one per module (as in Captum); importing the package registers them all in
``xand.explain.methods.base.ATTRIBUTION_METHODS``, in this order (the order the app lists them).

A new method: a module here with ``@register_method("name")`` on ``fn(model, x, target, **kw)``, imported
below; ``xand.explain.attribution.attribute`` calls it like every other.
"""

# isort: off
from xand.explain.methods import integrated_gradients  # noqa: F401 - ig, ig_grad, expected_gradients
from xand.explain.methods import gradient_shap  # noqa: F401 - gradshap
from xand.explain.methods import saliency  # noqa: F401
from xand.explain.methods import gradcam  # noqa: F401
from xand.explain.methods import occlusion  # noqa: F401
from xand.explain.methods import wave_ablation  # noqa: F401 - waves, waves_template
# isort: on
