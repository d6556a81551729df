"""CLIP's attention pool computed for the one token it returns."""
import torch
from open_clip.modified_resnet import AttentionPool2d


class MeanTokenAttentionPool(AttentionPool2d):
    """open_clip's ``AttentionPool2d`` (same parameters and state-dict keys) with the same
    output, computed with far less work.

    The original runs multi-head attention for all 1 + H*W tokens and keeps the mean token's
    output. Here only the mean token's query is formed, and the key and value projections are
    folded into it: per head h, ``q_h . (W_k x_t + b_k)_h = (W_k,h^T q_h) . x_t + const`` (the
    constant cancels in the softmax) and ``sum_t a_t (W_v x_t + b_v)_h = W_v,h (sum_t a_t x_t)
    + b_v,h``. On CLIP RN101's 7x7 grid (2048 channels, 32 heads) that is about 20 M instead of
    about 690 M multiply-adds per region, and no [50, N, 2048] query/key/value tensors are kept
    for backward. Equal to the original up to float rounding (a test).
    """

    @classmethod
    def from_pool(cls, pool: AttentionPool2d) -> "MeanTokenAttentionPool":
        """A copy of ``pool`` with its weights."""
        return _copy(cls, pool)

    def forward_all_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """open_clip's computation: attention for all 1 + H*W tokens, the mean token kept."""
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels = x.shape[:2]
        heads = self.num_heads
        head_dim = channels // heads
        tokens = x.flatten(2).transpose(1, 2)  # [N, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        q = self.q_proj(tokens[:, 0]).view(n, heads, head_dim) * head_dim ** -0.5
        w_k = self.k_proj.weight.view(heads, head_dim, channels)
        q_in = torch.einsum("nhd,hdc->nhc", q, w_k)  # the query in input space, per head
        # q . b_k is the same for every token and cancels in the softmax; it is kept so that
        # the key bias stays in the graph (a zero gradient, as in the original; DDP needs it).
        key_bias = torch.einsum("nhd,hd->nh", q, self.k_proj.bias.view(heads, head_dim))
        logits = torch.bmm(q_in, tokens.transpose(1, 2)) + key_bias[..., None]
        attention = logits.softmax(dim=-1)  # [N, heads, T]
        pooled = torch.bmm(attention, tokens)  # [N, heads, C]
        w_v = self.v_proj.weight.view(heads, head_dim, channels)
        values = torch.einsum("nhc,hdc->nhd", pooled, w_v).reshape(n, channels) + self.v_proj.bias
        return self.c_proj(values)


def clip_attention_pool(pool: AttentionPool2d) -> AttentionPool2d:
    """open_clip's own ``AttentionPool2d`` (attention over all tokens) with ``pool``'s weights."""
    return _copy(AttentionPool2d, pool)


def _copy(cls, pool: AttentionPool2d):
    grid = round((pool.positional_embedding.shape[0] - 1) ** 0.5)
    new = cls(grid, pool.k_proj.in_features, pool.num_heads, pool.c_proj.out_features)
    new.load_state_dict(pool.state_dict())
    return new.to(pool.positional_embedding.device)
