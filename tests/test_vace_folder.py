"""Wan VACE model folders (model/vace_folder.py): tiny real WanVACEPipeline folders built here
(tests/vace_tiny.py), checked from their headers, loaded, placed and run on the CPU; damaged
and wrong folders refused in one line naming the file; ``actanywhere model info|verify``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("ftfy")

import vace_tiny  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from actanywhere.cli import main  # noqa: E402
from actanywhere.errors import ModelError, SpecError  # noqa: E402
from actanywhere.model.vace import folder as vace_folder  # noqa: E402
from actanywhere.model.vace import load as vace_load  # noqa: E402
from actanywhere.model.vace import memory as vace_memory  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRANSFORMER_FILE = "transformer/diffusion_pytorch_model.safetensors"
VAE_FILE = "vae/diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One tiny single-expert and one two-expert folder for the module (copied to damage)."""
    root = tmp_path_factory.mktemp("vace")
    return {"one": Path(vace_tiny.build(str(root / "one"))),
            "two": Path(vace_tiny.build(str(root / "two"), two_experts=True, seed=1))}


def copy(built, tmp_path, which="one") -> Path:
    return Path(shutil.copytree(built[which], tmp_path / which))


def refused(folder, match: str, **kw) -> str:
    """The one-line ModelError ``inspect`` raises, checked to contain ``match``."""
    with pytest.raises(ModelError) as err:
        vace_folder.inspect(str(folder), **kw)
    text = str(err.value)
    assert "\n" not in text and match in text, text
    return text


def run(pipe, frames=9, steps=2):
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="a street at night", num_frames=frames, height=32, width=32,
               num_inference_steps=steps, output_type="np").frames
    assert out.shape == (1, frames, 32, 32, 3) and torch.isfinite(torch.from_numpy(out)).all()
    return out


# ----------------------------------------------------------------------------- inspect
def test_inspect_reads_kind_parts_and_counts_from_headers(built):
    folder = built["one"]
    assert vace_folder.is_vace_folder(str(folder)) and vace_folder.is_wan_folder(str(folder))
    info = vace_folder.inspect(str(folder))
    assert info.kind == "wan-vace" and info.size == "custom" and "unrecognised" in info.name
    assert set(info.parts) == {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}
    real = vace_load.load(str(folder), dtype="fp32")
    for name in ("transformer", "vae"):
        part = info.parts[name]
        assert part.parameters == sum(p.numel() for p in getattr(real, name).parameters())
        assert part.dtypes == ["F32"] and part.format == "safetensors"
        assert part.bytes == os.path.getsize(folder / part.files[0])
    # the text encoder's tied embedding is stored once
    te = real.text_encoder
    assert info.parts["text_encoder"].parameters == sum(p.numel() for p in te.parameters())
    assert not info.two_experts and info.boundary_ratio is None and info.layout == "pipeline"
    assert info.patch_size == (1, 2, 2) and info.frame_multiple == 16
    assert (info.vae_scale_spatial, info.vae_scale_temporal) == (8, 4)
    assert info.latent_frames(81) == 21 and info.latent_frames(9) == 3
    assert info.scheduler == "UniPCMultistepScheduler" and info.flow_shift == 3.0
    assert info.transformer["vace_layers"] == [0, 2] and info.native_resolution == 480
    assert json.loads(json.dumps(info.to_dict()))["kind"] == "wan-vace"


def test_real_configs_are_named_and_their_memory_estimates_ordered():
    """The published sizes on the meta device (no weights): named as the repos, and the
    estimate grows with size and shrinks with offload and fp8."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan, WanVACETransformer3DModel

    def count(cls, cfg):
        with init_empty_weights():
            return sum(p.numel() for p in cls(**cfg).parameters())

    assert vace_memory.identify(1536, 30, False)[:2] == ("Wan2.1 VACE 1.3B", "1.3B")
    assert vace_memory.identify(5120, 40, True)[0] == "Wan2.2 VACE-Fun A14B (two experts)"
    assert vace_memory.identify(5120, 40, False)[2] == (1280, 720)
    vae = count(AutoencoderKLWan, vace_memory.WAN_VAE)
    assert 120e6 < vae < 130e6  # the 508 MB fp32 file of the repos
    infos = []
    for cfg, two in ((vace_memory.WAN21_VACE_1_3B, False), (vace_memory.WAN21_VACE_14B, True)):
        n = count(WanVACETransformer3DModel, cfg)
        parts = {"transformer": vace_folder.PartInfo("transformer", "diffusers", "X", parameters=n),
                 "vae": vace_folder.PartInfo("vae", "diffusers", "V", parameters=vae),
                 "text_encoder": vace_folder.PartInfo("text_encoder", "transformers", "T",
                                                      parameters=5_680_000_000)}
        if two:
            parts["transformer_2"] = vace_folder.PartInfo("transformer_2", "diffusers", "X",
                                                          parameters=n)
        dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
        name, size, (w, h) = vace_memory.identify(dim, cfg["num_layers"], two)
        infos.append(vace_folder.FolderInfo(
            path="x", name=name, size=size, layout="pipeline", parts=parts, two_experts=two,
            boundary_ratio=0.875 if two else None, native_width=w, native_height=h,
            scheduler="UniPCMultistepScheduler", flow_shift=3.0, patch_size=(1, 2, 2),
            vae_scale_spatial=8, vae_scale_temporal=4,
            transformer=dict(dim=dim, heads=cfg["num_attention_heads"], head_dim=128,
                             ffn_dim=cfg["ffn_dim"], num_layers=cfg["num_layers"],
                             vace_layers=cfg["vace_layers"], text_dim=4096),
            text_encoder=dict(vace_memory.UMT5_XXL), vae_base_dim=96))
    small, big = infos
    assert 2.0e9 < small.parts["transformer"].parameters < 2.3e9
    assert 16e9 < big.parts["transformer"].parameters < 18e9

    def est(info, **kw):
        return vace_folder.vram_estimate(info, **{"height": 480, "width": 832, "frames": 81,
                                                  **kw})

    for info in infos:
        assert est(info, offload="group") < est(info, offload="model") < est(info)
        assert est(info) < est(info, height=720, width=1280)
        assert est(info, dtype="fp8") < est(info)
    assert 10 * 2**30 < est(small) < 30 * 2**30 and est(big) > 60 * 2**30
    assert est(big, offload="model") < est(big, offload="model", height=720, width=1280)
    lines = vace_memory.vram_table(small)
    assert "ESTIMATED" in lines[0] and [ln.split()[0] for ln in lines[2:]] == ["none", "model",
                                                                               "group"]
    with pytest.raises(ValueError, match="offload"):
        est(small, offload="disk")


# -------------------------------------------------------------------------------- load
def test_load_gives_the_real_pipeline_with_vace_blocks_and_a_float32_vae(built):
    from diffusers import WanVACEPipeline

    pipe = vace_load.load(str(built["one"]), dtype=torch.bfloat16)
    assert isinstance(pipe, WanVACEPipeline) and pipe.transformer_2 is None
    assert len(pipe.transformer.vace_blocks) == 2
    assert pipe.vae.dtype == torch.float32 and pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.transformer.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    run(pipe)
    with pytest.raises(SpecError, match="dtype"):
        vace_load.load(str(built["one"]), dtype="int8")


def test_two_expert_folder_loads_and_runs_both_experts(built):
    info = vace_folder.inspect(str(built["two"]))
    assert info.two_experts and info.boundary_ratio == 0.875 and "two experts" in info.name
    pipe = vace_load.load(str(built["two"]), dtype="fp32")
    assert pipe.transformer_2 is not None and pipe.config.boundary_ratio == 0.875
    calls = {"transformer": 0, "transformer_2": 0}
    for name in calls:
        getattr(pipe, name).register_forward_hook(
            lambda *_a, n=name: calls.__setitem__(n, calls[n] + 1))
    run(pipe, steps=4)
    assert calls["transformer"] > 0 and calls["transformer_2"] > 0, calls


def test_modular_pipeline_folder_with_its_parts_loads(built, tmp_path):
    from diffusers import WanVACEPipeline
    from diffusers.modular_pipelines.wan import Wan22VaceBlocks

    src = vace_load.load(str(built["two"]), dtype="fp32")
    modular = Wan22VaceBlocks().init_pipeline()
    modular.update_components(**{n: getattr(src, n) for n in (
        "transformer", "transformer_2", "vae", "text_encoder", "tokenizer", "scheduler")})
    modular.save_pretrained(str(tmp_path / "m"), overwrite_modular_index=True)
    assert not (tmp_path / "m" / "model_index.json").exists()
    assert vace_folder.is_vace_folder(str(tmp_path / "m"))
    info = vace_folder.inspect(str(tmp_path / "m"))
    assert info.layout == "modular" and info.two_experts and info.boundary_ratio == 0.875
    pipe = vace_load.load(str(tmp_path / "m"), dtype="fp32")
    assert isinstance(pipe, WanVACEPipeline) and pipe.transformer_2 is not None
    assert pipe.vae.dtype == torch.float32
    run(pipe, frames=5)


def test_sharded_weights_are_checked_shard_by_shard(built, tmp_path):
    folder = copy(built, tmp_path)
    pipe = vace_load.load(str(folder), dtype="fp32")
    os.remove(folder / TRANSFORMER_FILE)
    pipe.transformer.save_pretrained(str(folder / "transformer"), max_shard_size="60KB")
    info = vace_folder.inspect(str(folder))
    part = info.parts["transformer"]
    assert len(part.files) > 1 and part.parameters == sum(
        p.numel() for p in pipe.transformer.parameters())
    run(vace_load.load(str(folder), dtype="fp32"), frames=5, steps=1)
    shard = folder / part.files[-1]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    refused(folder, f"{shard}: truncated")
    shard.unlink()
    refused(folder, f"{shard}: missing shard listed in diffusion_pytorch_model.safetensors.index")


# ------------------------------------------------------------------------ place, offload
def test_place_on_the_cpu_with_fp8_storage_and_tiling_runs(built):
    pipe = vace_load.load(str(built["one"]), dtype="fp32")
    vace_folder.place(pipe, device="cpu", offload="group", fp8=True, vae_tiling=True)
    dtypes = {p.dtype for p in pipe.transformer.parameters()}
    assert torch.float8_e4m3fn in dtypes and pipe.vae.use_tiling
    run(pipe)
    with pytest.raises(SpecError, match="offload 'disk'"):
        vace_folder.place(pipe, device="cpu", offload="disk")


@pytest.mark.parametrize("mode", ["model", "group"])
def test_offload_hooks_of_diffusers_run_with_the_cpu_as_the_device(built, mode):
    """The calls ``place`` makes on a GPU (model CPU offload; group offload of both experts and
    the text encoder's blocks), made with the CPU as the onload device."""
    pipe = vace_load.load(str(built["two"]), dtype="fp32")
    vace_memory._offload(pipe, torch.device("cpu"), mode)
    run(pipe, frames=5)


# ------------------------------------------------------------------------------ refusals
def test_missing_part_folder_and_missing_index_are_named(built, tmp_path):
    folder = copy(built, tmp_path)
    shutil.rmtree(folder / "vae")
    refused(folder, f"{folder}/vae: missing part folder")
    (folder / "model_index.json").unlink()
    assert not vace_folder.is_vace_folder(str(folder))
    refused(folder, "model_index.json: missing")
    refused(tmp_path / "nowhere", "no such model folder")


def test_plain_wan_text_to_video_folder_is_refused_with_the_repo_to_download(built, tmp_path):
    from diffusers import WanPipeline, WanTransformer3DModel

    src = vace_load.load(str(built["one"]), dtype="fp32")
    cfg = {k: v for k, v in vace_tiny.TRANSFORMER.items() if not k.startswith("vace")}
    WanPipeline(tokenizer=src.tokenizer, text_encoder=src.text_encoder, vae=src.vae,
                scheduler=src.scheduler, transformer=WanTransformer3DModel(**cfg)
                ).save_pretrained(str(tmp_path / "t2v"))
    folder = tmp_path / "t2v"
    assert vace_folder.is_wan_folder(str(folder)) and not vace_folder.is_vace_folder(str(folder))
    text = refused(folder, "a Wan model without VACE blocks (WanPipeline)")
    assert "model_index.json" in text and "Wan-AI/Wan2.1-VACE-1.3B-diffusers" in text
    index = json.loads((folder / "model_index.json").read_text())  # a VACE index over it
    index["_class_name"] = "WanVACEPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    refused(folder, "transformer/config.json: a Wan transformer without VACE blocks "
                    "(WanTransformer3DModel")


def test_truncated_and_garbage_safetensors_are_named(built, tmp_path):
    folder = copy(built, tmp_path)
    file = folder / TRANSFORMER_FILE
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 1000])
    refused(folder, f"{file}: truncated: its header needs {len(data)} bytes")
    file.write_bytes(b"\xff" * 64)
    refused(folder, f"{file}: damaged or truncated safetensors file")
    file.write_bytes(data[:8] + b"{not json" + data[17:])
    refused(folder, f"{file}: damaged or truncated safetensors file (header")


def test_shape_mismatch_missing_and_unexpected_tensors_are_named(built, tmp_path):
    folder = copy(built, tmp_path)
    file = folder / TRANSFORMER_FILE
    good = load_file(str(file))
    bad = dict(good, **{"proj_out.weight": torch.zeros(65, 24)})
    save_file(bad, str(file))
    refused(folder, f"{file}: tensor proj_out.weight has shape [65, 24], "
                    "transformer/config.json expects [64, 24]")
    save_file({k: v for k, v in good.items() if k != "proj_out.bias"}, str(file))
    refused(folder, f"{file}: tensor proj_out.bias is missing (1 missing in all)")
    save_file(dict(good, **{"extra.weight": torch.zeros(2)}), str(file))
    refused(folder, f"{file}: unexpected tensor extra.weight")


def test_pickle_weights_are_refused_unless_allowed(built, tmp_path):
    folder = copy(built, tmp_path)
    state = load_file(str(folder / VAE_FILE))
    (folder / VAE_FILE).unlink()
    torch.save(state, folder / "vae" / "diffusion_pytorch_model.bin")
    refused(folder, f"{folder}/vae/diffusion_pytorch_model.bin: pickle weights can run "
                    "arbitrary code and are refused")
    with pytest.raises(ModelError, match="pickle"):
        vace_load.load(str(folder), dtype="fp32")
    info = vace_folder.inspect(str(folder), allow_pickle=True)
    assert info.parts["vae"].format == "pickle"
    pipe = vace_load.load(str(folder), dtype="fp32", allow_pickle=True)
    assert pipe.vae.dtype == torch.float32
    run(pipe, frames=5, steps=1)


def test_damaged_tokenizer_is_named_with_the_fix(built, tmp_path):
    folder = copy(built, tmp_path)
    tok = folder / "tokenizer" / "tokenizer.json"
    tok.write_bytes(b"\x00garbage")
    refused(folder, f"{tok}: unreadable tokenizer")
    tok.write_text(json.dumps({"version": "1.0", "model": {"type": "NoSuchModel"}}))
    with pytest.raises(ModelError) as err:  # parses as JSON, transformers cannot build it
        vace_load.load(str(folder), dtype="fp32")
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{folder}/tokenizer: the tokenizer does not load")
    assert "re-download the tokenizer/ folder" in text
    tok.unlink()
    refused(folder, "neither tokenizer.json nor spiece.model")


# ----------------------------------------------------------------------------------- CLI
def test_model_info_and_verify_print_the_kind_and_a_vram_table(built, tmp_path, capsys):
    folder = copy(built, tmp_path, "two")
    assert main(["model", "info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "wan-vace: Wan VACE" in out and "two experts" in out and "ESTIMATED" in out
    assert "832x480 bf16" in out and "1280x720 fp8" in out
    assert [ln.split()[0] for ln in out.splitlines()[-3:]] == ["none", "model", "group"]
    assert main(["model", "info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "wan-vace" and info["two_experts"] and not info["sha256"]
    assert main(["model", "verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("ok") and f"{TRANSFORMER_FILE:<60} sha256" in out
    # hf download --local-dir records each LFS file's sha256: a changed file is a problem
    record = folder / ".cache" / "huggingface" / "download" / (VAE_FILE + ".metadata")
    record.parent.mkdir(parents=True)
    record.write_text(f"{'0' * 40}\n{'ab' * 32}\n1712656091.123\n")
    assert main(["model", "verify", str(folder)]) == 5
    assert "vae/diffusion_pytorch_model.safetensors: sha256" in capsys.readouterr().err
    file = folder / TRANSFORMER_FILE
    file.write_bytes(file.read_bytes()[:-100])
    assert main(["model", "verify", str(folder)]) == 5
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {file}: truncated")


def test_model_info_refuses_a_plain_wan_folder_with_exit_code_5(built, tmp_path, capsys):
    folder = copy(built, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "WanPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    assert main(["model", "info", str(folder)]) == 5
    assert "without VACE blocks (WanPipeline)" in capsys.readouterr().err


def test_the_console_command_prints_info_for_a_vace_folder(built):
    r = subprocess.run([sys.executable, "-m", "actanywhere", "model", "info", str(built["one"])],
                       env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "wan-vace" in r.stdout and "group" in r.stdout


def test_loading_and_running_contacts_no_network(built, tmp_path):
    """A fresh process, hub offline, every internet socket connect refused and recorded, an
    empty HF_HOME: loading and a one-step run need nothing outside the folder."""
    script = textwrap.dedent("""
        import socket, sys
        attempts = []
        real = socket.socket.connect
        def guard(self, address, *rest):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                attempts.append(address)
                raise OSError("network refused by the test")
            return real(self, address, *rest)
        socket.socket.connect = guard
        socket.socket.connect_ex = guard
        from actanywhere.model.vace import load as vace_load
        pipe = vace_load.load(sys.argv[1], dtype="fp32")
        pipe.set_progress_bar_config(disable=True)
        out = pipe(prompt="a beach", num_frames=5, height=32, width=32,
                   num_inference_steps=1, output_type="np").frames
        print("frames", out.shape, "attempts", len(attempts), attempts)
    """)
    home = tmp_path / "hf"
    home.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(home),
               HF_ENDPOINT="http://127.0.0.1:9")
    r = subprocess.run([sys.executable, "-c", script, str(built["one"])], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "frames (1, 5, 32, 32, 3) attempts 0 []" in r.stdout, r.stdout
    assert not [p for p in home.rglob("*") if p.is_file()]


# -------------------------------------------------------------------- real size (opt-in)
@pytest.mark.skipif(os.environ.get("ACTANYWHERE_REAL_SIZE") != "1",
                    reason="builds the 2.2 B-parameter Wan2.1-VACE-1.3B transformer (about 6 GB "
                           "of RAM, under a minute on 2 cores); set ACTANYWHERE_REAL_SIZE=1")
def test_real_size_structure():
    """The real 1.3B transformer and Wan VAE (random weights, bf16 / fp32): parameter counts,
    one denoising step (two calls) at a tiny frame size with a 16-token text embedding (the
    real 512 makes a bf16 step minutes long on a CPU without bf16 units), a VAE round trip;
    the bench's own builders."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_vace

    model = bench_vace.build_transformer(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    assert n == 2_153_972_032, n
    assert len(model.blocks) == 30 and len(model.vace_blocks) == 15
    fp32 = [k for k, p in model.named_parameters() if p.dtype == torch.float32]
    assert fp32 and all("norm2" in k or "time_embedder" in k or "scale_shift_table" in k
                        for k in fp32)
    inputs = bench_vace.call_inputs(5, 32, 48, 1, torch.bfloat16, torch.device("cpu"),
                                    text_len=16)
    with torch.inference_mode():
        out = bench_vace.step(model, inputs, 999.0)
    assert out.shape == (1, 16, 3, 4, 6) and torch.isfinite(out.float()).all()
    del model
    vae = bench_vace.build_vae()
    assert sum(p.numel() for p in vae.parameters()) == 126_892_531
    with torch.inference_mode():
        lat = vae.encode(torch.rand(1, 3, 5, 64, 112) * 2 - 1).latent_dist.mode()
        assert lat.shape == (1, 16, 2, 8, 14)
        assert vae.decode(lat).sample.shape == (1, 3, 5, 64, 112)


def test_an_inspected_folder_is_checked_again_once_a_file_changes(built, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(built["one"], folder)
    first = vace_folder.inspect(str(folder))
    assert vace_folder.inspect(str(folder)) is first  # nothing changed: kept
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 64])
    with pytest.raises(ModelError, match="truncated"):
        vace_folder.inspect(str(folder))
