"""Environments of bench/learning.py for unit profiles, text and vectors (known truth).

- profiles: every customer is a new unit whose stored profile (segment, plan and a
  free-text bio) decides the best action; the app sends only the unit id and a noise
  feature (device). Raw VW gets the same features inline, as the service's merge builds
  them (`{"device", "profile": {...}}`), so the two learn from identical examples.
- profiles-off: the same customers and profiles, the experiment without the `profile`
  setting: the service sees the device only (what an app that does not send the record
  gets).
- text: a declared text field; the best action is the topic of its words (three topic
  words among filler words, in random order).
- vector: a declared 16-dimension vector; the best action is the argmax of a fixed linear
  map of it.
- semantic / semantic-text: the signal is in meaning only: each customer sends one word
  (a food, a sport, an animal, a vehicle or an instrument: 40 words each) and the best
  action is its category. The stream moves on to new words every tenth of the rounds, so
  most words are seen in a short window only and words met later share nothing with the
  ones learned earlier: declared `embedding` (the bundled sentence model) carries what it
  learned to synonyms, declared `text` has to learn every word anew.
- semantic-profile: the `semantic` stream with each word stored in a new unit's profile
  (`profile.word: embedding`), so the vectors are computed by the profile write and
  stored; the app sends only the unit id.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.learning import Environment

HOBBIES = ("hiking", "cooking", "gaming", "gardening")
FILLER = tuple(f"w{i}" for i in range(40))
TOPICS = tuple(tuple(f"t{t}x{j}" for j in range(6)) for t in range(5))


def _sentence(rng: np.random.Generator, key_words: list[str], filler: int) -> str:
    words = key_words + [str(w) for w in rng.choice(FILLER, size=filler)]
    return " ".join(words[i] for i in rng.permutation(len(words)))


def profiles(rounds: int, merged: bool = True, seed: int = 3,
             sent_inline: bool = False) -> Environment:
    """The best action depends only on a unit's stored segment and bio. `merged`: the
    experiment merges the stored profiles (else the service never sees them);
    `sent_inline`: the app sends the same features in every rank instead (no profiles stored),
    the service's own reference for `merged`: same stream, same learning delay."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(5, size=rounds, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    hobby = rng.integers(0, len(HOBBIES), size=rounds)
    device = rng.integers(0, 3, size=rounds)
    probabilities = np.full((rounds, 10), 0.05)
    rows = np.arange(rounds)
    probabilities[rows, (2 * segment) % 10] += 0.5
    probabilities[rows, (3 * hobby + 1) % 10] += 0.3
    units = [f"new-{i}" for i in range(rounds)]
    stored = {unit: {"segment": f"s{s}", "plan": f"p{rng.integers(3)}",
                     "bio": _sentence(rng, [HOBBIES[h], "and"], 5)}
              for unit, s, h in zip(units, segment, hobby, strict=True)}
    sent = [{"device": f"d{d}"} for d in device]
    inline = [{**s, "profile": stored[u]} for s, u in zip(sent, units, strict=True)]
    settings: dict[str, Any] = {"feature_types": {"profile.bio": "text"}}
    if sent_inline:
        return Environment("profiles-inline", inline, probabilities, settings, None, inline,
                           units)
    if merged:
        settings["profile"] = {"namespace": "profile", "max_age_seconds": 86400}
    return Environment("profiles" if merged else "profiles-off", inline, probabilities,
                       settings, stored if merged else None, sent, units)


def text(rounds: int, seed: int = 4) -> Environment:
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, len(TOPICS), size=rounds)
    probabilities = np.full((rounds, 10), 0.05)
    probabilities[np.arange(rounds), (2 * topic) % 10] += 0.6
    contexts = [{"review": _sentence(rng, [str(w) for w in rng.choice(TOPICS[t], 3,
                                                                      replace=False)], 5)}
                for t in topic]
    return Environment("text", contexts, probabilities,
                       {"feature_types": {"review": "text"}})


def vector(rounds: int, dims: int = 16, seed: int = 5) -> Environment:
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((rounds, dims))
    best = (embeddings @ rng.standard_normal((dims, 10))).argmax(axis=1)
    probabilities = np.full((rounds, 10), 0.05)
    probabilities[np.arange(rounds), best] += 0.6
    contexts = [{"user": {"emb": [round(float(x), 4) for x in row]}} for row in embeddings]
    return Environment("vector", contexts, probabilities,
                       {"feature_types": {"user.emb": "vector"}})


CATEGORIES = (
    "pizza sushi pasta hamburger salad noodles burrito curry steak pancakes dumplings "
    "sandwich omelette lasagna risotto tacos ramen bagel croissant waffles paella kebab "
    "falafel porridge muffin cheesecake brownie doughnut lobster shrimp oysters meatballs "
    "sausage bacon tofu hummus yogurt granola spaghetti enchilada",
    "football basketball tennis volleyball hockey baseball cricket rugby golf badminton "
    "swimming cycling marathon boxing wrestling fencing archery rowing surfing skiing "
    "snowboarding skating climbing triathlon handball lacrosse softball polo karate judo "
    "taekwondo gymnastics diving sailing kayaking bowling squash billiards darts weightlifting",
    "elephant giraffe tiger lion zebra kangaroo penguin dolphin whale eagle owl parrot wolf "
    "fox bear rabbit squirrel deer moose camel hippo rhinoceros cheetah leopard gorilla "
    "chimpanzee koala panda otter beaver hedgehog porcupine flamingo pelican ostrich "
    "crocodile alligator turtle lizard salamander",
    "car truck bus motorcycle bicycle scooter train tram subway airplane helicopter boat ship "
    "ferry yacht canoe submarine tractor bulldozer ambulance taxi limousine van minivan pickup "
    "jeep sedan convertible hatchback trolley locomotive glider jet rocket spaceship "
    "skateboard snowmobile forklift wagon caravan",
    "guitar piano violin cello trumpet saxophone flute clarinet drums harp banjo ukulele "
    "accordion harmonica trombone tuba oboe bassoon xylophone tambourine mandolin bagpipes "
    "synthesizer organ keyboard cymbals bongos maracas sitar harpsichord piccolo viola "
    "contrabass marimba glockenspiel triangle kazoo didgeridoo lute recorder",
)


def semantic(rounds: int, kind: str = "embedding", blocks: int = 10,
             seed: int = 6) -> Environment:
    rng = np.random.default_rng(seed)
    vocab = [rng.permutation(words.split()) for words in CATEGORIES]
    per_block = len(vocab[0]) // blocks
    topic = rng.integers(0, len(vocab), size=rounds)
    block = np.arange(rounds) * blocks // rounds
    pick = rng.integers(0, per_block, size=rounds)
    probabilities = np.full((rounds, 10), 0.05)
    probabilities[np.arange(rounds), (2 * topic) % 10] += 0.6
    contexts = [{"query": str(vocab[t][b * per_block + k])}
                for t, b, k in zip(topic, block, pick, strict=True)]
    name = "semantic" if kind == "embedding" else f"semantic-{kind}"
    return Environment(name, contexts, probabilities, {"feature_types": {"query": kind}})


def semantic_profile(rounds: int, seed: int = 6) -> Environment:
    """`semantic`'s stream with the word stored in each (new) unit's profile, declared
    `profile.word: embedding`: embedded when the profiles are written, never at rank time
    (the app sends the unit id and a noise device)."""
    base = semantic(rounds, seed=seed)
    rng = np.random.default_rng(seed + 100)
    units = [f"sem-{i}" for i in range(rounds)]
    stored = {unit: {"word": context["query"]}
              for unit, context in zip(units, base.contexts, strict=True)}
    sent = [{"device": f"d{d}"} for d in rng.integers(0, 3, size=rounds)]
    inline = [{**s, "profile": stored[u]} for s, u in zip(sent, units, strict=True)]
    settings = {"feature_types": {"profile.word": "embedding"},
                "profile": {"namespace": "profile", "max_age_seconds": 86400}}
    return Environment("semantic-profile", inline, base.probabilities, settings, stored,
                       sent, units)
