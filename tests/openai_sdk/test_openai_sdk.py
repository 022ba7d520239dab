"""The official `openai` SDK against `ember serve`, used the way vLLM users use it: only
`base_url` changes. Checks models, completions, chat, streaming, n > 1, seeds, logprobs,
errors as SDK exceptions, the API key, and parallel clients (the seeds' threads example)."""

import concurrent.futures
import json

import openai
import pytest
import requests


def client(server, key="not-needed"):
    return openai.OpenAI(base_url=server.base + "/v1", api_key=key, max_retries=0, timeout=300)


def test_models(server):
    models = client(server).models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert models.data[0].object == "model"


def test_completion_usage_and_logprobs(server):
    c = client(server).completions.create(model="tiny", prompt="Hello, Ember", max_tokens=12, temperature=0,
                                          logprobs=3, extra_body={"ignore_eos": True})
    choice = c.choices[0]
    assert choice.finish_reason == "length"
    assert len(choice.logprobs.tokens) == 12
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs)
    assert "".join(choice.logprobs.tokens) == choice.text
    # Keyed by token id, the top alternatives are exactly 3, plus the sampled token when it is not among them.
    ids = client(server).completions.create(model="tiny", prompt="Hello, Ember", max_tokens=12, temperature=0,
                                            logprobs=3, extra_body={"ignore_eos": True, "return_tokens_as_token_ids": True})
    lp = ids.choices[0].logprobs
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert token.startswith("token_id:")
        assert len(top) == 3 and top[token] == logprob, (token, top)  # greedy: the chosen token is the best one
    assert [t.split(":")[1] for t in lp.tokens] != []
    assert c.usage.completion_tokens == 12
    assert c.usage.total_tokens == c.usage.prompt_tokens + 12


def test_chat_and_stream_agree(server):
    api = client(server)
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say something."}]
    whole = api.chat.completions.create(model="tiny", messages=messages, max_tokens=16, temperature=0.8, seed=11)
    assert whole.choices[0].message.role == "assistant"
    stream = api.chat.completions.create(model="tiny", messages=messages, max_tokens=16, temperature=0.8, seed=11,
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_completion_stream_with_n(server):
    stream = client(server).completions.create(model="tiny", prompt="Count", max_tokens=10, n=3, temperature=1.0,
                                               seed=3, stream=True, extra_body={"ignore_eos": True})
    texts, finished = {}, {}
    for chunk in stream:
        for ch in chunk.choices:
            texts[ch.index] = texts.get(ch.index, "") + ch.text
            if ch.finish_reason:
                finished[ch.index] = ch.finish_reason
    assert sorted(finished) == [0, 1, 2]
    assert set(finished.values()) == {"length"}
    whole = client(server).completions.create(model="tiny", prompt="Count", max_tokens=10, n=3, temperature=1.0,
                                              seed=3, extra_body={"ignore_eos": True})
    assert {c.index: c.text for c in whole.choices} == texts


def test_seed_reproduces(server):
    api = client(server)
    run = lambda: api.completions.create(model="tiny", prompt="Once", max_tokens=20, temperature=1.2, seed=99,
                                         extra_body={"ignore_eos": True}).choices[0].text
    assert run() == run()


def test_errors_are_sdk_exceptions(server):
    api = client(server)
    with pytest.raises(openai.NotFoundError):
        api.completions.create(model="no-such-model", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError) as err:
        api.completions.create(model="tiny", prompt="x", max_tokens=2, temperature=-1)
    assert err.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="tiny", messages=[], max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        api.completions.create(model="tiny", prompt="x", max_tokens=2, logprobs=50)
    # Still serving.
    assert api.completions.create(model="tiny", prompt="x", max_tokens=2).choices[0].text is not None


def test_parallel_threads(server):
    api = client(server)

    def ask(i):
        return api.completions.create(model="tiny", prompt=f"Request {i}", max_tokens=8,
                                      extra_body={"ignore_eos": True}).usage.completion_tokens

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(ask, range(6))) == [8] * 6


def test_requests_stream_like_the_seeds(server):
    # Plain `requests` with stream=True, parsing `data:` lines by hand.
    body = {"model": "tiny", "prompt": "Stream me", "max_tokens": 6, "stream": True, "ignore_eos": True}
    with requests.post(server.base + "/v1/completions", json=body, stream=True, timeout=300) as r:
        assert r.status_code == 200
        lines = [l.decode() for l in r.iter_lines() if l]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(l[len("data: "):]) for l in lines[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_tokenize_detokenize(server):
    t = requests.post(server.base + "/tokenize", json={"model": "tiny", "prompt": "Hello world"}, timeout=60).json()
    assert t["count"] == len(t["tokens"])
    d = requests.post(server.base + "/detokenize", json={"model": "tiny", "tokens": t["tokens"]}, timeout=60).json()
    assert "Hello world" in d["prompt"]


def test_api_key(keyed_server):
    with pytest.raises(openai.AuthenticationError):
        client(keyed_server, "wrong").models.list()
    assert client(keyed_server, "sk-ember-test").models.list().data[0].id == "tiny"
