"""RecBole data loaders for models whose training step is expensive (UPSR on a CPU).

Two config keys, both off by default (RecBole's own loaders are used then):

- ``train_prefixes_per_user`` (int): each epoch trains on at most this many of every user's
  training prefixes, drawn afresh each epoch from a generator seeded by ``seed`` and the
  epoch number. RecBole's sequential augmentation makes one row per prefix (ML-100K: ~97k
  rows); K per user keeps the users balanced and an epoch short.
- ``valid_users`` (int): validation (best-epoch selection) runs on this many users drawn once
  with ``seed``.
- ``test_users`` (int): test runs on this many users drawn once with ``seed`` (ablations whose
  full-sort test would cost an hour). Unset, test runs on every user, as a comparison should.

:func:`data_preparation` is RecBole's ``data_preparation`` with these keys applied.
"""

from __future__ import annotations

from logging import getLogger

import numpy as np
from recbole.data import data_preparation as recbole_data_preparation
from recbole.data.dataloader import FullSortEvalDataLoader, TrainDataLoader


def _get(config, key):
    try:
        return config[key]
    except KeyError:
        return None


class PrefixSampleTrainDataLoader(TrainDataLoader):
    """RecBole's ``TrainDataLoader`` over K prefixes per user, redrawn every epoch.

    Args:
        config: RecBole config; reads ``train_prefixes_per_user`` and ``seed``.
        dataset, sampler, shuffle: as ``TrainDataLoader``.
    """

    def __init__(self, config, dataset, sampler, shuffle=False):
        per_user = config["train_prefixes_per_user"]
        if not isinstance(per_user, int) or per_user < 1:
            raise ValueError(
                f"train_prefixes_per_user: expected a positive integer, got {per_user!r}"
            )
        users = dataset.inter_feat[dataset.uid_field].numpy()
        order = np.argsort(users, kind="stable")
        _, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
        self._rows_of_user = [order[s : s + c] for s, c in zip(starts, counts, strict=True)]
        self._per_user = per_user
        self._seed = int(config["seed"])
        self._epoch = -1
        self._epoch_rows = np.zeros(0, dtype=np.int64)
        # TrainDataLoader.__init__ with another sample size: one epoch is min(K, prefixes)
        # rows of every user, a constant count as torch's DataLoader needs
        self.logger = getLogger()
        self._set_neg_sample_args(
            config, dataset, config["MODEL_INPUT_TYPE"], config["train_neg_sample_args"]
        )
        self.sample_size = sum(min(per_user, len(r)) for r in self._rows_of_user)
        super(TrainDataLoader, self).__init__(config, dataset, sampler, shuffle=shuffle)

    def _draw(self, epoch: int) -> None:
        rng = np.random.default_rng([self._seed, epoch])
        chosen = [
            rows if len(rows) <= self._per_user else rng.choice(rows, self._per_user, replace=False)
            for rows in self._rows_of_user
        ]
        self._epoch_rows = np.sort(np.concatenate(chosen))

    def __iter__(self):
        self._epoch += 1  # RecBole iterates the train loader once per epoch
        self._draw(self._epoch)
        return super().__iter__()

    def collate_fn(self, index):
        return super().collate_fn(self._epoch_rows[np.asarray(index)])


def data_preparation(config, dataset):
    """RecBole's ``data_preparation``, then ``train_prefixes_per_user``, ``valid_users`` and
    ``test_users``."""
    train, valid, test = recbole_data_preparation(config, dataset)
    if _get(config, "train_prefixes_per_user"):
        train = PrefixSampleTrainDataLoader(
            config, train._dataset, train._sampler, shuffle=config["shuffle"]
        )
    return (
        train,
        _user_subset(config, valid, "valid_users"),
        _user_subset(config, test, "test_users"),
    )


def _user_subset(config, loader, key: str):
    """``loader`` over the ``config[key]`` users drawn with ``seed`` (all when unset)."""
    users = _get(config, key)
    if not users:
        return loader
    if not isinstance(users, int) or users < 1:
        raise ValueError(f"{key}: expected a positive integer, got {users!r}")
    if not isinstance(loader, FullSortEvalDataLoader) or not loader.is_sequential:
        raise ValueError(f"{key}: only for sequential models with full-sort evaluation")
    rows = len(loader._dataset)
    if users >= rows:
        return loader
    keep = np.sort(np.random.default_rng(int(config["seed"])).choice(rows, users, replace=False))
    subset = loader._dataset.copy(loader._dataset.inter_feat[keep])
    return FullSortEvalDataLoader(config, subset, loader._sampler, shuffle=False)
