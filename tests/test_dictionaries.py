"""Answer dictionaries: WordNet offline, verifiers, extra forms, first-token ids and coverage."""

from __future__ import annotations

import json
import re
import socket
import threading
from typing import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from anchors.datasets import (
    AnswerDictionary, DatasetError, OpenAICompatibleVerifier, build_dictionary, build_sample, dictionaries_for, first_token_ids,
    load_dictionaries, load_extra_forms, save_dictionaries, tokenise, to_traced,
)
from anchors.datasets.dictionaries import cannot_be_an_answer
from anchors.datasets.records import Record
from anchors.datasets.wordnet import LEXNAMES, install_from_debian, lexnames_text
from anchors.models.tiny import tiny_model


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("answer,task,expected", [
    ("red", "color", {"crimson"}),
    ("dog", "object_recognition", {"domestic dog"}),
    ("three", "counting", {"3", "iii"}),
])
def test_wordnet_dictionaries_offline(no_network, answer, task, expected):
    forms = build_dictionary(answer, task=task).forms
    assert forms[0] == answer and len(forms) <= 10
    assert expected & set(forms), forms
    assert len(set(forms)) == len(forms) and all(f == f.lower() for f in forms)


def test_debian_wordnet_install_makes_a_folder_nltk_reads(tmp_path, monkeypatch):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    assert len(LEXNAMES) == 45 and lexnames_text().splitlines()[5] == "05\tnoun.animal\t1"
    cache = install_from_debian(tmp_path)
    monkeypatch.setattr(nltk.data, "path", [str(cache)])  # NLTK reads only folders on its path
    reader = WordNetCorpusReader(nltk.data.find("corpora/wordnet"), None)
    assert "domestic_dog" in reader.synset("dog.n.01").lemma_names()
    assert reader.synset("dog.n.01").lexname() == "noun.animal"


def test_missing_wordnet_files_give_an_install_hint(tmp_path):
    from anchors.datasets import WordNetUnavailable

    with pytest.raises(WordNetUnavailable, match="install the Debian packages wordnet-base and wordnet-sense-index"):
        install_from_debian(tmp_path / "cache", source=tmp_path / "nowhere")


def test_verifier_filters_candidates_but_keeps_the_canonical_form():
    calls = []

    def only_shades(canonical, candidate, question):
        calls.append((canonical, candidate, question))
        return candidate in {"crimson", "scarlet", "ruby"}

    forms = build_dictionary("red", task="color", question="What colour?", verifier=only_shades).forms
    assert forms == ("red", "crimson", "ruby", "scarlet")
    assert all(q == "What colour?" for _, _, q in calls)


def test_extra_forms_file(tmp_path):
    (tmp_path / "extra.json").write_text(json.dumps({"Red": ["红色", "红"]}, ensure_ascii=False))
    extras = load_extra_forms(tmp_path / "extra.json")
    forms = build_dictionary("red", task="color", extra_forms=extras).forms
    assert forms[:3] == ("red", "红色", "红") and len(forms) == 10
    (tmp_path / "bad.json").write_text('["red"]')
    with pytest.raises(ValueError, match="bad.json: extra forms must be a JSON object"):
        load_extra_forms(tmp_path / "bad.json")


def chat_server(reply: Callable[[str], str], seen: list) -> HTTPServer:
    """A loopback chat-completions server: records (path, Authorization, body) of every request in
    ``seen`` and answers each prompt with ``reply(prompt)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body))
            payload = json.dumps({"choices": [{"message": {"content": reply(body["messages"][0]["content"])}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return HTTPServer(("127.0.0.1", 0), Handler)


def test_openai_compatible_verifier_against_a_loopback_server(monkeypatch):
    seen = []
    server = chat_server(lambda prompt: "Yes." if "crimson" in prompt else "No", seen)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    monkeypatch.setenv("TEST_KEY", "secret")
    verifier = OpenAICompatibleVerifier(f"http://127.0.0.1:{server.server_port}/v1", "judge", api_key_env="TEST_KEY")
    assert verifier("red", "crimson", "What colour?") is True
    assert verifier("red", "crimson", "What colour?") is True  # cached: one request only
    thread.join(timeout=5)
    server.server_close()
    assert len(seen) == 1
    path, auth, body = seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret" and body["model"] == "judge"


def _record(vision="red", text="blue", task="color"):
    return Record("r1", "unused.jpg", task, "What colour is the ball?", "The ball is blue.", vision, text)


def test_first_token_ids_cover_space_and_case_variants():
    tokenizer = tiny_model("qwen2_5_vl").adapter.tokenizer
    # the tiny BPE splits "red" as re|d, " red" as Ġred, "Red" as Red and " Red" as Ġ|Red: the lone
    # space token is skipped, so " Red" contributes Red again
    assert tokenizer.convert_ids_to_tokens(list(first_token_ids(tokenizer, ["red"]))) == ["re", "Ġred", "Red"]


def test_coverage_filter_reports_why_samples_are_dropped():
    tokenizer = tiny_model("qwen2_5_vl").adapter.tokenizer
    samples = [build_sample(_record(), "text"), build_sample(_record("cherry", "cherry red"), "vision")]
    dictionaries = {
        ("red", "color"): AnswerDictionary("red", "color", ("red", "crimson")),
        ("blue", "color"): AnswerDictionary("blue", "color", ("blue",)),
        ("cherry", "color"): AnswerDictionary("cherry", "color", ("cherry",)),
        ("cherry red", "color"): AnswerDictionary("cherry red", "color", ("cherry red",)),
    }
    kept, report = tokenise(samples, dictionaries, tokenizer)
    assert [k.sample.sample_id for k in kept] == ["r1:text:default:default"]
    assert report.dropped == {"shared ids": 1} and report.summary() == "1 samples kept; dropped: 1 shared ids (r1:vision:default:default)"
    assert set(kept[0].compliant_ids) == set(first_token_ids(tokenizer, ["blue"]))
    with pytest.raises(DatasetError, match="no dictionary for answer 'green'"):
        tokenise([build_sample(_record("green", "blue"), "text")], dictionaries, tokenizer)


def test_dictionaries_persist_and_feed_traced_samples(tmp_path, no_network):
    from PIL import Image

    Image.new("RGB", (56, 56), "red").save(tmp_path / "img.jpg")
    record = Record("r1", str(tmp_path / "img.jpg"), "color", "What colour is the ball?", "The ball is blue.", "red", "blue")
    samples = [build_sample(record, "text"), build_sample(record, "vision")]
    dictionaries = dictionaries_for(samples, verifier=lambda canonical, candidate, question: False)
    assert set(dictionaries) == {("red", "color"), ("blue", "color")}
    assert dictionaries[("red", "color")].forms == ("red",)
    reloaded = load_dictionaries(save_dictionaries(tmp_path / "dicts.jsonl", dictionaries.values()))
    assert reloaded == dictionaries
    tokenizer = tiny_model("qwen2_5_vl").adapter.tokenizer
    kept, _ = tokenise(samples, reloaded, tokenizer)
    traced = to_traced(kept)
    assert [t.instructed for t in traced] == ["text", "vision"]
    assert traced[0].compliant_ids == traced[1].competing_ids
    assert traced[0].prompt.image.size == (56, 56)


def test_wordnet_forms_that_cannot_be_answers_are_dropped_and_listed(no_network):
    one = build_dictionary("one", task="counting")
    assert "i" not in one.forms and {"1", "single"} <= set(one.forms)
    assert ("i", "single letter") in one.dropped
    assert AnswerDictionary.from_dict(json.loads(json.dumps(one.to_dict()))) == one
    assert cannot_be_an_answer("it") == "function word" and cannot_be_an_answer("7") is None
    assert build_dictionary("one", task="counting", extra_forms={"one": ["I"]}).forms[1] == "I"  # a user's choice stays


def test_data_build_reaches_the_verifier_and_reports_every_dropped_form(tmp_path):
    from .mc2_fixture import write_image
    from .test_cli import run

    seen = []
    server = chat_server(lambda prompt: "yes" if "Candidate: 1\n" in prompt or "Candidate: 2\n" in prompt else "no", seen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    write_image(tmp_path / "a.jpg", 0)
    record = {"id": "c1", "image": "a.jpg", "context": "There are two dogs.", "question": "How many dogs are there?",
              "answer_vision": "one", "answer_text": "two", "task": "counting"}
    (tmp_path / "records.jsonl").write_text(json.dumps(record))
    try:
        done = run("data", "build", "--jsonl", str(tmp_path / "records.jsonl"), "--out", str(tmp_path / "data"),
                   "--verifier-endpoint", f"http://127.0.0.1:{server.server_port}/v1", "--verifier-model", "judge")
    finally:
        server.shutdown()
        server.server_close()
    dictionaries = {d["canonical"]: d for d in map(json.loads, (tmp_path / "data" / "dictionaries.jsonl").read_text().splitlines())}
    assert dictionaries["one"]["forms"] == ["one", "1"] and dictionaries["two"]["forms"] == ["two", "2"]
    assert ["i", "single letter"] in dictionaries["one"]["dropped"]
    assert ["ace", "rejected by the verifier"] in dictionaries["one"]["dropped"]
    logged = " ".join(re.sub(r"console\.py:\d+|\[\d\d:\d\d:\d\d\]", " ", done.stderr).split())
    assert "dictionary 'one' (counting): dropped 'i' (single letter)" in logged
    asked = [body["messages"][0]["content"] for _, _, body in seen]
    assert asked and not any("Candidate: i\n" in prompt for prompt in asked)  # dropped before asking
