"""The schema of one run, pydantic only: nets chosen by `kind`, models with their augmentation, the training
recipe, the stage graph and the paper's claims. A method's own `distill:` block is validated by the method
(`distillers.<method>.Params`), so adding a method never touches this file."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_serializer, model_validator

NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # template and stage names: they become folder and MLflow names
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes for `run --compile`
CIFAR_NETS = ("resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet8x4",
              "resnet32x4", "resnet18", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2", "vgg8", "vgg11", "vgg13",
              "convnet13")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    # Settings added after runs and models were keyed by these dumps: left out while at their defaults, so the
    # keys (and --resume, and the caches) of earlier runs stay as they were.
    LATE: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_late_defaults(self, handler):
        data = handler(self)
        for name in self.LATE:
            if getattr(self, name) == type(self).model_fields[name].default:
                data.pop(name, None)
        return data


class MLPSpec(Strict):
    """Fully connected, Hinton-style dropout and max-norm (the MNIST nets of 1503.02531)."""
    kind: Literal["mlp"]
    hidden: list[PositiveInt] = Field(min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    input_dropout: float = Field(0.0, ge=0, lt=1)
    max_norm: float | None = Field(None, gt=0)


class CNNSpec(Strict):
    """A small CNN for 8x8 and 28x28 inputs: one conv-BN-ReLU stage per entry, halving the size between."""
    kind: Literal["cnn"]
    channels: list[PositiveInt] = Field(min_length=1, max_length=5)


class CifarNetSpec(Strict):
    """The CIFAR nets under their published names and layer shapes (RepDistiller / mdistiller)."""
    kind: Literal[CIFAR_NETS]


NetSpec = Annotated[Union[MLPSpec, CNNSpec, CifarNetSpec], Field(discriminator="kind")]


class ModelSpec(Strict):
    net: NetSpec
    jitter: int = Field(0, ge=0, le=8)   # Hinton's "jitter by up to N pixels": a shift filled with black
    crop: int = Field(0, ge=0, le=8)     # random crop after padding by N: the same operation, torchvision's name
    flip: bool = False                   # horizontal flip with probability 1/2
    noise: float = Field(0.0, ge=0, le=10)  # Gaussian noise of this std added to the (normalised) inputs
    pad: Literal["fill", "reflect"] = "fill"  # a shift's border: black (normalised), or the image mirrored
    LATE = ("noise", "pad")

    @model_validator(mode="after")
    def _one_shift(self):
        if self.jitter and self.crop:
            raise ValueError("jitter and crop are the same shift; set one of them")
        return self

    @property
    def shift(self) -> int:
        return self.jitter or self.crop

    @property
    def augmented(self) -> bool:
        return bool(self.shift or self.flip or self.noise)


class TrainSpec(Strict):
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False               # SGD with Nesterov momentum (DML's recipe)
    weight_decay: float = Field(0.0, ge=0, le=1)
    batch_size: PositiveInt
    epochs: PositiveInt
    # ramps: mean teacher's (1703.01780, its TensorFlow code): up as exp(-5 (1 - e / warmup_epochs)^2), down
    # over the last rampdown_epochs as exp(-12.5 (1 - (epochs - e) / rampdown_epochs)^2)
    schedule: Literal["cosine", "constant", "multistep", "exponential", "ramps"] = "cosine"
    milestones: list[PositiveInt] = []   # multistep: multiply the rate by gamma at these epochs
    gamma: float = Field(0.1, gt=0, le=1)  # multistep: the factor; exponential: the factor per epoch
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up of the rate over the first epochs (ramps: sigmoid)
    rampdown_epochs: int = Field(0, ge=0)  # schedule ramps only
    adam_beta1_after: float | None = Field(None, ge=0, lt=1)  # ramps: Adam's beta1 falls from 0.9 to this over the
                                                            # ramp-down (mean teacher's 0.5), as the rate does
    # Hinton et al. 2012 (1207.0580, appendix A): momentum rises linearly from momentum_start to `momentum`
    # over momentum_epochs, and each step is scaled by (1 - momentum), so the rate is the step's share.
    momentum_start: float | None = Field(None, ge=0, lt=1)
    momentum_epochs: int = Field(0, ge=0)
    step_scaled_by_momentum: bool = False
    val_size: PositiveInt
    LATE = ("nesterov", "rampdown_epochs", "adam_beta1_after")

    @model_validator(mode="after")
    def _ramps(self):
        if (self.rampdown_epochs or self.adam_beta1_after is not None) and self.schedule != "ramps":
            raise ValueError("rampdown_epochs and adam_beta1_after belong to schedule 'ramps'")
        if self.adam_beta1_after is not None and self.optimizer != "adam":
            raise ValueError("adam_beta1_after needs optimizer 'adam'")
        if self.schedule == "ramps" and self.warmup_epochs + self.rampdown_epochs > self.epochs:
            raise ValueError(f"warm-up ({self.warmup_epochs}) and ramp-down ({self.rampdown_epochs}) epochs "
                             f"exceed the {self.epochs} epochs")
        return self

    def momentum_at(self, epochs_done: int) -> float:
        if self.momentum_start is None or not self.momentum_epochs:
            return self.momentum
        share = min(1.0, epochs_done / self.momentum_epochs)
        return self.momentum_start + share * (self.momentum - self.momentum_start)


class StageSpec(Strict):
    """One trained model. `teacher` names an earlier stage whose model teaches this one through `method`.
    `model` is teacher, student or a name under the run's `models:` (an assistant, say). A stage with
    `ensemble:` trains nothing: its model averages the probabilities of the earlier stages it lists. A stage
    with `peers: N` trains N nets of its model together (a cohort, as in DML); each is tracked on its own."""
    name: str = Field(pattern=NAME)
    model: str = Field(pattern=NAME)
    seed_offset: int = Field(0, ge=0, lt=1000)  # members of an ensemble, generations: the same net, other seeds
    ensemble: list[str] = []
    peers: int = Field(1, ge=1, le=16)
    init: str | None = None               # start from this earlier stage's trained weights (after a phase)
    method_from: str | None = None        # load the trained parts of this earlier stage's method (FT's paraphraser)
    train: dict[str, Any] | None = None   # this stage's changes to the run's `train:` (a phase's epochs)
    method: str = "ce"
    teacher: str | None = None
    distill: dict[str, Any] | None = None  # this stage's method parameters; default: the run's `distill`
    cache: bool | None = None  # default: a stage without a teacher is cached by what made it
    omit_classes: list[int] = []      # left out of this stage's training (transfer) set; validation keeps all
    shift_classes: list[int] = []     # classes whose output bias is shifted after training (lab/bias.py)
    paper_shift: float | None = None  # the paper's own shift, whose test result is logged beside ours


class Claim(Strict):
    stage: str
    # top1: test accuracy in percent; test_error_ema: the test errors of a method's EMA model (mean teacher's
    # teacher, at the last epoch); the others: test errors after a stage's bias shift (lab/bias.py)
    metric: Literal["test_error", "top1", "test_error_ema", "test_error_shifted", "test_error_on_shifted_classes",
                    "test_error_on_shifted_classes_unshifted"] = "test_error"
    value: float
    tolerance: float = Field(ge=0)
    dataset: str
    source: str = ""
    # which epoch the source reports; unstated: the source does not say (ours: the best-validation epoch)
    epoch: Literal["best", "last", "unstated"] = "best"
    runs: PositiveInt | None = 1             # over how many runs the source averaged (None: not stated)
    teacher_net: str | None = None           # the pair the number belongs to (None: any)
    student_net: str | None = None

    @model_validator(mode="after")
    def _ema_at_last(self) -> Claim:
        if self.metric == "test_error_ema" and self.epoch != "last":
            raise ValueError("the EMA model's test errors are measured at the last epoch only: say epoch: last")
        return self


def _stage_train(train: TrainSpec, stage: StageSpec, index: int) -> None:
    """A stage's own `train:` over the template's, checked with the stage's path in the message."""
    from pydantic import ValidationError

    try:
        TrainSpec.model_validate({**train.model_dump(), **stage.train})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "train"
        if err["type"] == "extra_forbidden":
            raise ValueError(f"unknown key 'stages.{index}.train.{key}' (valid keys: "
                             f"{', '.join(sorted(TrainSpec.model_fields))})") from None
        raise ValueError(f"stage {stage.name!r}: bad value for 'stages.{index}.train.{key}': "
                         f"{err['msg'].removeprefix('Value error, ')}") from None


class SpreadSpec(Strict):
    """A profile's seed-to-seed spread of test errors (lab/effect.py): one-seed differences within it are noise."""
    errors: float = Field(ge=0)
    seeds: int = Field(ge=2)
    source: str = ""   # how it was measured


class RunSpec(Strict):
    name: str = Field(pattern=NAME)
    title: str
    paper: str | None = None  # an arXiv ID; a paper not on arXiv is cited by `reference` instead
    reference: str = ""
    method: str
    dataset: str
    normalize: bool = False  # subtract the dataset's channel means and divide by its stds
    # gcn-zca: global contrast normalisation (scale 55) then ZCA whitening (filter bias 0.1) fitted on the
    # training split, as mean teacher's code prepares CIFAR-10 (datasets/preprocess_cifar10.py)
    whiten: Literal["none", "gcn-zca"] = "none"
    stages: list[StageSpec] = Field(min_length=1)
    seed: int = Field(0, ge=0, lt=2**31)
    teacher: ModelSpec
    student: ModelSpec
    models: dict[str, ModelSpec] = {}  # further models a stage may name (TAKD's assistant)
    train: TrainSpec
    distill: dict[str, Any] = {}
    claims: list[Claim] = []
    # where our loss or recipe deliberately departs from the code behind the claims (one line): the claims
    # are then shown without a verdict
    differs: str = ""
    spread: SpreadSpec | None = None  # measured for the profile: what one seed can tell (lab/effect.py)
    estimate_minutes: dict[str, float] = {}
    profile: str = "paper"
    LATE = ("whiten",)

    @field_validator("paper")
    @classmethod
    def _arxiv_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from paperlab.errors import BadInput
        from paperlab.library.ids import normalise

        try:
            return normalise(value)
        except BadInput as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _graph(self):
        if self.paper is None and not self.reference.strip():
            raise ValueError("give paper (an arXiv ID) or, for a paper not on arXiv, reference")
        if self.normalize and self.whiten != "none":
            raise ValueError("normalize and whiten are two ways to prepare the inputs; set one of them")
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage {stage.name!r} appears twice")
            if stage.teacher is not None and stage.teacher not in seen:
                raise ValueError(f"stage {stage.name!r} is taught by {stage.teacher!r}, which is not an earlier stage")
            if stage.method == "ce" and stage.teacher is not None:  # other methods: templates.check_methods
                raise ValueError(f"stage {stage.name!r}: method 'ce' takes no teacher")
            if stage.model not in ("teacher", "student", *self.models):
                raise ValueError(f"stage {stage.name!r}: model {stage.model!r} is not teacher, student or one of "
                                 f"models: ({', '.join(self.models) or 'none given'})")
            if stage.init is not None and (stage.init not in seen or self.stage(stage.init).model != stage.model):
                raise ValueError(f"stage {stage.name!r} starts from {stage.init!r}, which is not an earlier stage "
                                 f"of the same model")
            if stage.method_from is not None and stage.method_from not in seen:
                raise ValueError(f"stage {stage.name!r} takes its method's parts from {stage.method_from!r}, "
                                 f"which is not an earlier stage")
            if stage.train is not None:
                _stage_train(self.train, stage, len(seen))
            missing = [m for m in stage.ensemble if m not in seen]
            if missing:
                raise ValueError(f"stage {stage.name!r}: ensemble members {missing} are not earlier stages")
            if stage.ensemble and (stage.teacher or stage.method != "ce" or stage.peers > 1):
                raise ValueError(f"stage {stage.name!r}: an ensemble trains nothing; give it no teacher, "
                                 f"method or peers")
            seen.add(stage.name)
        return self

    def model_spec(self, name: str) -> ModelSpec:
        return {"teacher": self.teacher, "student": self.student, **self.models}[name]

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.stages if s.name == name)

    def params_of(self, stage: StageSpec) -> dict[str, Any]:
        if stage.distill is not None:
            return stage.distill
        return self.distill if stage.method == self.method else {}

    def claim_for(self, stage: str) -> Claim | None:
        """The paper's claim for a stage, on this run's teacher/student pair."""
        return next((c for c in self.claims if c.stage == stage
                     and c.teacher_net in (None, self.teacher.net.kind)
                     and c.student_net in (None, self.student.net.kind)), None)

    def train_of(self, stage: StageSpec) -> TrainSpec:
        return self.train if stage.train is None else TrainSpec.model_validate({**self.train.model_dump(),
                                                                                **stage.train})

    def cached(self, stage: StageSpec) -> bool:
        """By default a stage that learns from labels alone is cached; `cache: true` caches any other (a
        phase), keyed by its whole lineage; an ensemble is never cached (it trains nothing)."""
        if stage.ensemble:
            return False
        return stage.teacher is None and stage.init is None if stage.cache is None else stage.cache
