# mk_beam_goldens.py - transformers' beam search outputs for the settings the fixture
# goldens do not cover: early_stopping False / True / "never" with length_penalty 0.5,
# 1.0 and 2.0, 4 beams, 4 returned sequences, 24 new tokens, for every case of the
# t5-tiny-gated and t5-tiny-relu fixtures (computed in float32, as the fixtures were).
# Writes tests/data/beam_goldens.json, which tests/unit/test_engine_golden.c checks.
# usage (on a machine with torch + transformers):
#   python3 mk_beam_goldens.py FIXTURES_MODELS_DIR OUT.json
import json, sys
import torch, transformers
from transformers import T5ForConditionalGeneration

src, out = sys.argv[1], sys.argv[2]
res = {"transformers": transformers.__version__, "torch": torch.__version__, "models": {}}
for name in ["t5-tiny-gated", "t5-tiny-relu"]:
    model = T5ForConditionalGeneration.from_pretrained(f"{src}/{name}", dtype=torch.float32).eval()
    golden = json.load(open(f"{src}/{name}.golden.json"))
    eos = model.config.eos_token_id
    runs = []
    for ci, case in enumerate(golden["cases"]):
        x = torch.tensor([case["input_ids"]])
        for es in [False, True, "never"]:
            for lp in [0.5, 1.0, 2.0]:
                with torch.no_grad():
                    b = model.generate(x, max_new_tokens=24, do_sample=False, use_cache=False, num_beams=4,
                                       num_return_sequences=4, length_penalty=lp, early_stopping=es,
                                       output_scores=True, return_dict_in_generate=True)
                seqs = []
                for s in b.sequences.tolist():
                    s = s[1:]  # drop the decoder start token
                    if eos in s:
                        s = s[: s.index(eos) + 1]
                    seqs.append(s)
                runs.append({"case": ci, "early_stopping": es, "length_penalty": lp, "sequences": seqs,
                             "sequences_scores": [float(v) for v in b.sequences_scores]})
    res["models"][name] = runs
json.dump(res, open(out, "w"), indent=0)
print("wrote", out, sum(len(v) for v in res["models"].values()), "runs")
