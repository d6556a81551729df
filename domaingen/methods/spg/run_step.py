"""SPG stage II's run step: a discriminator step, then a generator step, every iteration."""
import time
from typing import Optional

import torch
from detectron2.engine import SimpleTrainer

from domaingen.engine.launch import create_ddp_model
from domaingen.engine.schedules import build_lr_scheduler

from .networks import clip_gradients_per_parameter, lsgan_loss


class SPGTrainer(SimpleTrainer):
    """The GAN run step of ``SPGClassifier`` (least-squares losses, METHODS.md section 3).

    Each iteration draws a real batch x (labelled with its domain's stage I prompt) and an
    independent fake batch x' from a second loader with its own shuffle, then

    * D step: ``MSE(D(v^{d(x)}, f(x)), 1) + MSE(D(G(z, f(x')), f(x')), 0)``, D's gradients
      clipped per parameter, D's AdamW steps;
    * G step: ``MSE(D(G(z, f(x')), f(x')), 1)`` through the just-updated D (whose parameters take
      no gradient), G's gradients clipped, G's AdamW steps.

    G and D are wrapped in DDP separately, each doing one forward and one backward per iteration.
    The trainer's LR hook schedules G (``self.optimizer``); this run step schedules D. The state
    dict holds both optimizers, D's scheduler and the AMP loss scaler; the Trainer seeds every step
    (after ``_data_loader_iter`` has created both iterators), so ``--resume`` continues exactly.
    """

    def __init__(self, model, data_loader, fake_loader, optimizer_g, optimizer_d, scheduler_d,
                 limits_g, limits_d, amp_dtype: Optional[torch.dtype] = None):
        super().__init__(model, data_loader, optimizer_g)
        # Mixed precision (autocast at amp_dtype on the model's device; fp16 adds loss scaling).
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(model.device.type,
                                           enabled=amp_dtype == torch.float16)
        self.fake_loader = fake_loader
        self._fake_iter = None
        self.optimizer_d = optimizer_d
        self.scheduler_d = scheduler_d
        self.generator = create_ddp_model(model.generator, sync_buffers=False)
        self.discriminator = create_ddp_model(model.discriminator)
        self.limits_g, self.limits_d = limits_g, limits_d

    @classmethod
    def from_config(cls, cfg, model, data_loader, fake_loader):
        if not len(model.domain_prompts):
            raise ValueError("SPG stage II training needs the stage I domain prompt labels: set "
                             "MODEL.SPG.DOMAIN_PROMPTS (tools/spg_pipeline.py does) or "
                             "MODEL.SPG.AUTHORS_DOMAIN_PROMPTS")
        s, lr, wd = cfg.MODEL.SPG, cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY
        optimizer_g = torch.optim.AdamW(model.generator.parameters(), lr=lr, weight_decay=wd)
        optimizer_d = torch.optim.AdamW(model.discriminator.parameters(), lr=lr, weight_decay=wd)
        return cls(model, data_loader, fake_loader, optimizer_g, optimizer_d,
                   build_lr_scheduler(cfg, optimizer_d),
                   model.generator.gradient_limits(s.CLIP_G_WEIGHT, s.CLIP_G_BIAS,
                                                   s.CLIP_G_LAST_BIAS),
                   model.discriminator.gradient_limits(s.CLIP_D_WEIGHT, s.CLIP_D_BIAS,
                                                       s.CLIP_D_FIRST_LAST),
                   getattr(torch, cfg.SOLVER.AMP.PRECISION) if cfg.SOLVER.AMP.ENABLED
                   else None)

    @property
    def _data_loader_iter(self):
        """The real batches' iterator; creating it creates the fake batches' one too."""
        if self._fake_iter is None:
            self._fake_iter = iter(self.fake_loader)
        return super()._data_loader_iter

    def _autocast(self):
        return torch.autocast(self.model.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def run_step(self):
        assert self.model.training, "[SPGTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        real = next(self._data_loader_iter)
        fake = next(self._fake_iter)
        data_time = time.perf_counter() - start
        model, scaler = self.model, self.scaler
        with self._autocast():
            real_features = model.image_features(real)
            fake_features = model.image_features(fake)
            real_prompts = model.domain_prompt_labels(real)
            fake_prompts = self.generator(model.sample_noise(len(fake)), fake_features)
            # D step: one forward over the real and the (detached) generated pairs.
            scores = self.discriminator(torch.cat([real_prompts, fake_prompts.detach()]),
                                        torch.cat([real_features, fake_features])).float()
            loss_d = lsgan_loss(scores[:len(real)], 1.0) + lsgan_loss(scores[len(real):], 0.0)
        self.optimizer_d.zero_grad()
        scaler.scale(loss_d).backward()
        scaler.unscale_(self.optimizer_d)
        clip_gradients_per_parameter(model.discriminator.named_parameters(), self.limits_d)
        scaler.step(self.optimizer_d)

        # G step through the updated D, outside D's DDP wrapper (D's gradients are not needed).
        discriminator = model.discriminator
        discriminator.requires_grad_(False)
        try:
            with self._autocast():
                loss_g = lsgan_loss(discriminator(fake_prompts, fake_features).float(), 1.0)
        finally:
            discriminator.requires_grad_(True)
        self.optimizer.zero_grad()
        scaler.scale(loss_g).backward()
        scaler.unscale_(self.optimizer)
        clip_gradients_per_parameter(model.generator.named_parameters(), self.limits_g)
        scaler.step(self.optimizer)
        scaler.update()
        self.scheduler_d.step()
        self._write_metrics({"loss_d": loss_d, "loss_g": loss_g}, data_time)

    def state_dict(self):
        return {**super().state_dict(), "optimizer_d": self.optimizer_d.state_dict(),
                "scheduler_d": self.scheduler_d.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.optimizer_d.load_state_dict(state_dict["optimizer_d"])
        self.scheduler_d.load_state_dict(state_dict["scheduler_d"])
        self.scaler.load_state_dict(state_dict["scaler"])
