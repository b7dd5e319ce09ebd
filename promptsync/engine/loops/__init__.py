"""The loops (``LOOPS``) the Runner runs, one per job; each is an mmengine ``BaseLoop``."""
from .pretrain_loop import CLIPPretrainLoop
from .prototype_loop import PrototypeLoop
from .train_loop import PromptTrainLoop, TrainResult
from .tta_loop import TTALoop

__all__ = ['CLIPPretrainLoop', 'PrototypeLoop', 'PromptTrainLoop', 'TrainResult', 'TTALoop']
