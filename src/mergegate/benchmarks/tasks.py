"""mergegate's own small general-capability tasks, written as lm-eval YAML tasks over local JSONL (no network).

- ``mg_arith``: arithmetic word problems generated with a seed (generation, exact match on the number).
- ``mg_facts``: multiple-choice facts (loglikelihood of each choice, accuracy).
- ``mg_heldout_ppl``: perplexity of held-out prose (rolling loglikelihood; word perplexity, bits per byte).

They are tiny on purpose (CPU, CI); on a GPU runner list lm-eval's real
benchmarks instead (arc_challenge, hellaswag, mmlu, truthfulqa_mc2,
winogrande, gsm8k), which download their data there.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

__all__ = ["OFFLINE_TASKS", "write_offline_tasks"]

OFFLINE_TASKS = ("mg_arith", "mg_facts", "mg_heldout_ppl")

_CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"), ("Japan", "Tokyo"),
             ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"),
             ("Greece", "Athens"), ("Russia", "Moscow"), ("China", "Beijing"), ("Mexico", "Mexico City"), ("Portugal", "Lisbon"),
             ("Austria", "Vienna"), ("Sweden", "Stockholm"), ("Ireland", "Dublin"), ("Thailand", "Bangkok"), ("Argentina", "Buenos Aires")]
_FACTS = [
    ("Which planet is the largest in our solar system?", ["Jupiter", "Mars", "Venus", "Mercury"], 0),
    ("What is the chemical symbol for water?", ["H2O", "CO2", "NaCl", "O2"], 0),
    ("How many legs does a spider have?", ["eight", "six", "four", "ten"], 0),
    ("What gas do plants take in from the air to make food?", ["carbon dioxide", "oxygen", "helium", "nitrogen"], 0),
    ("Which is the closest star to the Earth?", ["the Sun", "Sirius", "Polaris", "Vega"], 0),
    ("What is frozen water called?", ["ice", "steam", "fog", "dew"], 0),
    ("How many days are there in a week?", ["seven", "five", "ten", "twelve"], 0),
    ("Which animal is known as the king of the jungle?", ["the lion", "the mouse", "the cow", "the frog"], 0),
    ("What color is the sky on a clear day?", ["blue", "green", "red", "black"], 0),
    ("Which organ pumps blood through the body?", ["the heart", "the lungs", "the liver", "the stomach"], 0),
]
_HELDOUT = [
    "The river rose slowly through the night, and by morning the lower fields had turned into a wide, quiet lake. "
    "Farmers stood at the edge of the water, counting the fence posts that still showed above the surface.",
    "A good recipe tells you not only what to do but why you are doing it. When you know that the butter must be cold "
    "to make the pastry flaky, you stop treating the instruction as a rule and start treating it as a reason.",
    "The old library kept its rarest books in a room without windows. Visitors had to wear cotton gloves, and the "
    "librarian turned each page herself, slowly, as if the paper might remember every hand that had touched it.",
    "Learning a new language as an adult is humbling. For months you understand more than you can say, and every "
    "conversation feels like walking on ice: careful, slow, and full of small falls.",
    "The train left the station exactly on time. Through the window the city thinned into suburbs, then into "
    "fields of yellow rapeseed, and the passengers settled into the long, comfortable silence of a journey.",
    "Bees communicate the direction of food with a dance. The angle of the dance relative to the vertical tells the "
    "other bees the angle of the flowers relative to the sun, and the length of the dance tells them the distance.",
]


def _facts(seed: int) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for country, capital in _CAPITALS:
        others = rng.sample([c for _, c in _CAPITALS if c != capital], 3)
        choices = [capital, *others]
        rng.shuffle(choices)
        docs.append({"question": f"What is the capital of {country}?", "choices": choices, "answer": choices.index(capital)})
    for q, choices, answer in _FACTS:
        order = list(range(len(choices)))
        rng.shuffle(order)
        docs.append({"question": q, "choices": [choices[i] for i in order], "answer": order.index(answer)})
    return docs


def _arith(seed: int, n: int = 24) -> list[dict]:
    rng = random.Random(seed)
    names, things = ["Tom", "Ana", "Li", "Sara", "Omar", "Mia"], ["apples", "books", "pencils", "stamps", "marbles", "cards"]
    docs = []
    for _ in range(n):
        who, what = rng.choice(names), rng.choice(things)
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        if rng.random() < 0.5:
            q, ans = f"{who} has {a} {what} and gets {b} more. How many {what} does {who} have now?", a + b
        else:
            a, b = max(a, b), min(a, b)
            q, ans = f"{who} has {a} {what} and gives away {b}. How many {what} does {who} have left?", a - b
        docs.append({"question": q, "answer": str(ans)})
    return docs


def write_offline_tasks(folder: Path, seed: int = 0) -> Path:
    """Write the offline tasks' YAML and JSONL into ``folder`` (lm-eval's ``--include_path``); return it.

    The data files are named by absolute path, as lm-eval's ``json`` loader needs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = {"mg_facts": _facts(seed), "mg_arith": _arith(seed), "mg_heldout_ppl": [{"text": t} for t in _HELDOUT]}
    for name, docs in data.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))

    def source(name: str) -> str:
        return (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str((folder / f'{name}.jsonl').resolve()))}\n"
                "test_split: test\n")

    (folder / "mg_facts.yaml").write_text(
        "task: mg_facts\n" + source("mg_facts") + "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: answer\n'
        "target_delimiter: \" \"\nmetric_list:\n  - {metric: acc, aggregation: mean, higher_is_better: true}\n"
        "metadata: {version: 1}\n")
    (folder / "mg_arith.yaml").write_text(
        "task: mg_arith\n" + source("mg_arith") + "output_type: generate_until\n"
        'doc_to_text: "{{question}} Answer with a number only."\ndoc_to_target: answer\n'
        "generation_kwargs: {until: [\"\\n\\n\"], max_gen_toks: 48, do_sample: false, temperature: 0}\n"
        "filter_list:\n  - name: number\n    filter:\n      - {function: regex, regex_pattern: \"(-?[0-9]+)\", group_select: -1}\n"
        "      - {function: take_first}\n"
        "metric_list:\n  - {metric: exact_match, aggregation: mean, higher_is_better: true}\n"
        "metadata: {version: 1}\n")
    (folder / "mg_heldout_ppl.yaml").write_text(
        "task: mg_heldout_ppl\n" + source("mg_heldout_ppl") + "output_type: loglikelihood_rolling\n"
        'doc_to_text: ""\ndoc_to_target: "{{text}}"\n'
        "metric_list:\n  - {metric: word_perplexity}\n  - {metric: byte_perplexity}\n  - {metric: bits_per_byte}\n"
        "metadata: {version: 1}\n")
    return folder
