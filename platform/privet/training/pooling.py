"""Mean-pooled BERT sequence classifier, for sentence-embedding base models.

Sentence-transformers models such as all-MiniLM-L6-v2 were trained so that the *masked
mean* of the last hidden states is the sentence representation; their [CLS] token and
pooler were never trained for it. Hugging Face's `BertForSequenceClassification` reads
the [CLS] pooler, so on these models a classifier must first learn a new 148k-parameter
pooler from scratch, and under DP-SGD every one of those parameters takes noise. Pooling
the way the model was trained leaves only the linear classifier new (hidden size times labels).

This file imports only torch and transformers on purpose: a model export copies it
verbatim as `modeling_privet.py` and points `auto_map` at it, so
`AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`
rebuilds exactly the model privet trained and serves.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the hidden states over real (unpadded) tokens: (batch, seq, dim) → (batch, dim)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class MeanPooledBertForSequenceClassification(BertPreTrainedModel):  # type: ignore[no-untyped-call]
    """BERT encoder (no [CLS] pooler) → masked mean → dropout → linear classifier."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()  # type: ignore[no-untyped-call]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        kwargs.pop("return_dict", None)
        outputs = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        pooled = masked_mean(outputs.last_hidden_state, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
