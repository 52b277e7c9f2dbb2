"""The comb autoencoder: shared encoder, per-persona decoders, progressive training, checkpoints.

:mod:`vfx.comb.network` (the Fig. 3A/3B network), :mod:`vfx.comb.losses` (SSIM, MS-SSIM, masked level loss),
:mod:`vfx.comb.data` (persona crops), :mod:`vfx.comb.train` (progressive training), :mod:`vfx.comb.checkpoint`
(safetensors checkpoints, ``vfx.CombModel/1`` manifests), :mod:`vfx.comb.preview` (pictures of a run) and
:mod:`vfx.comb.plan` (a shot -> one training plan, used by ``vfx train`` and the farm).
"""

from vfx.comb.checkpoint import PersonaRecord, load_checkpoint, read_manifest
from vfx.comb.network import CombConfig, CombNetwork
from vfx.comb.plan import TrainingOverrides, TrainingPlan, extract_personas, plan_training
from vfx.comb.train import TrainConfig, train_comb

__all__ = ["CombConfig", "CombNetwork", "PersonaRecord", "TrainConfig", "TrainingOverrides", "TrainingPlan",
           "extract_personas", "load_checkpoint", "plan_training", "read_manifest", "train_comb"]
