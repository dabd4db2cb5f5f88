// clients.mjs - t5serve through the real client libraries (no mocks): the `openai` SDK
// (/v1 routes) and @huggingface/inference 4.13.16 (TGI's routes) and 4.13.30 (which posts
// an OpenAI completions body to URL/v1/completions), against the server that
// tests/suites/35-clients.sh started. References: /generate's greedy text for the same
// ids, /detokenize of the fixtures' golden greedy ids (transformers), /embed's vectors.
// usage: node clients.mjs BASE_URL API_KEY MODEL_NAME GOLDEN_JSON EMBED_URL (a server of st5-tiny)
import fs from "node:fs";
import OpenAI, { NotFoundError, AuthenticationError } from "openai";
import { InferenceClient as HfOld } from "hfi-old";
import { InferenceClient as HfNew } from "hfi-new";

const [base, key, modelName, goldenPath, embedBase] = process.argv.slice(2);
const golden = JSON.parse(fs.readFileSync(goldenPath, "utf8"));
let checks = 0, fails = 0;
function check(ok, what) {
  checks++;
  if (!ok) { fails++; console.log("FAIL:", what); }
}
async function post(path, body, at = base) {
  const r = await fetch(at + path, {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
  });
  return { status: r.status, json: await r.json() };
}

const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0 });

// models.list
const models = [];
for await (const m of client.models.list()) models.push(m);
check(models.length === 1 && models[0].id === modelName && models[0].object === "model" &&
      models[0].owned_by === "t5serve", `models.list: ${JSON.stringify(models)}`);
const one = await client.models.retrieve(modelName);
check(one.id === modelName, `models.retrieve: ${JSON.stringify(one)}`);

for (const c of golden.cases) {
  const ids = c.input_ids, max = c.greedy.max_new_tokens;
  // the references: /generate's greedy text, and the golden ids' text
  const gen = await post("/generate", { ids, max_new_tokens: max });
  const gold = await post("/detokenize", { ids: c.greedy.ids });
  check(gen.status === 200 && gold.status === 200 && gen.json.text === gold.json.text,
        `/generate greedy = golden: ${JSON.stringify(gen.json)} vs ${JSON.stringify(gold.json)}`);
  const ref = gen.json.text;
  // completions, greedy from the same ids
  const cmp = await client.completions.create({ model: modelName, prompt: ids, max_tokens: max, temperature: 0 });
  check(cmp.object === "text_completion" && cmp.choices.length === 1 && cmp.choices[0].text === ref,
        `completions greedy: ${JSON.stringify(cmp.choices)} vs ${JSON.stringify(ref)}`);
  check(cmp.usage.prompt_tokens === ids.length && cmp.usage.completion_tokens === c.greedy.ids.length &&
        cmp.usage.total_tokens === ids.length + c.greedy.ids.length, `usage: ${JSON.stringify(cmp.usage)}`);
  check(cmp.choices[0].finish_reason === (c.greedy.ids.at(-1) === 1 ? "stop" : "length"),
        `finish_reason ${cmp.choices[0].finish_reason}`);
  // streamed: the chunks concatenate to the same text; usage at the end
  const stream = await client.completions.create({ model: modelName, prompt: ids, max_tokens: max, temperature: 0,
                                                   stream: true, stream_options: { include_usage: true } });
  let text = "", usage = null, fin = null;
  for await (const ch of stream) {
    for (const x of ch.choices) { text += x.text; if (x.finish_reason) fin = x.finish_reason; }
    if (ch.usage) usage = ch.usage;
  }
  check(text === ref && fin === cmp.choices[0].finish_reason, `stream: ${JSON.stringify(text)} (${fin})`);
  check(usage && usage.completion_tokens === cmp.usage.completion_tokens, `stream usage ${JSON.stringify(usage)}`);
  // logprobs=3: the chosen token's logprob is the golden step's log-softmax; 3 alternatives + the chosen
  const lp = await client.completions.create({ model: modelName, prompt: ids, max_tokens: max, temperature: 0,
                                               logprobs: 3 });
  const L = lp.choices[0].logprobs;
  check(L && L.tokens.length === c.greedy.ids.length && L.token_logprobs.length === L.tokens.length &&
        L.top_logprobs.length === L.tokens.length && L.text_offset.length === L.tokens.length &&
        L.tokens.join("") === ref, `logprobs shape: ${JSON.stringify(L).slice(0, 300)}`);
  for (let i = 0; L && i < L.tokens.length && i < c.greedy.steps.length; i++) {
    const st = c.greedy.steps[i], want = st.top[0][1] - st.logsumexp;
    check(Math.abs(L.token_logprobs[i] - want) < 2e-3, `step ${i} logprob ${L.token_logprobs[i]} vs ${want}`);
    const tops = Object.values(L.top_logprobs[i]).sort((a, b) => b - a);
    check(tops.length >= 1 && tops.length <= 4, `step ${i} top_logprobs has ${tops.length}`);
    check(Math.abs(tops[0] - want) < 2e-3, `step ${i} best alternative ${tops[0]} vs ${want}`);
  }
  // chat.completions with the same content equals completions (default template: the last user message)
  const textIn = c.text;
  const cmpT = await client.completions.create({ model: modelName, prompt: textIn, max_tokens: max, temperature: 0 });
  const chat = await client.chat.completions.create({ model: modelName, max_tokens: max, temperature: 0,
    messages: [{ role: "system", content: "ignored by the default template" }, { role: "user", content: textIn }] });
  check(chat.object === "chat.completion" && chat.choices[0].message.role === "assistant" &&
        chat.choices[0].message.content === cmpT.choices[0].text, `chat: ${JSON.stringify(chat.choices)} vs ${JSON.stringify(cmpT.choices)}`);
  const chs = await client.chat.completions.create({ model: modelName, max_tokens: max, temperature: 0, stream: true,
                                                     messages: [{ role: "user", content: textIn }] });
  let ct = "";
  for await (const ch of chs) for (const x of ch.choices) ct += x.delta.content ?? "";
  check(ct === cmpT.choices[0].text, `chat stream: ${JSON.stringify(ct)}`);
  // @huggingface/inference against the endpoint URL, old (TGI's body to the URL) and new (URL/v1/completions)
  const gt = await post("/generate", { text: textIn, max_new_tokens: max });
  for (const [name, Hf] of [["4.13.16", HfOld], ["4.13.30", HfNew]]) {
    const hf = new Hf(key).endpoint(base);
    const params = { max_new_tokens: max, do_sample: false };
    const out = await hf.textGeneration({ inputs: textIn, parameters: params });
    check(out.generated_text === gt.json.text, `hf ${name} textGeneration: ${JSON.stringify(out)} vs ${JSON.stringify(gt.json.text)}`);
    let st = "";
    for await (const ev of hf.textGenerationStream({ inputs: textIn, parameters: params }))
      st += ev.token ? (ev.token.special ? "" : ev.token.text) : (ev.choices?.[0]?.text ?? "");
    check(st === gt.json.text, `hf ${name} textGenerationStream: ${JSON.stringify(st)}`);
  }
}

// n=2 with a seed: two choices, reproducible, each what /generate samples with its seed
const text = golden.cases[0].text;
const s1 = await client.completions.create({ model: modelName, prompt: text, max_tokens: 8, n: 2, seed: 11 });
const s2 = await client.completions.create({ model: modelName, prompt: text, max_tokens: 8, n: 2, seed: 11 });
check(s1.choices.length === 2 && s1.choices.map((c) => c.index).join() === "0,1", `n=2: ${JSON.stringify(s1.choices)}`);
check(JSON.stringify(s1.choices) === JSON.stringify(s2.choices), "n=2 with a seed is reproducible");
const g0 = await post("/generate", { text, max_new_tokens: 8, do_sample: true, top_k: 0, seed: 11 });
check(s1.choices[0].text === g0.json.text, `n=2 choice 0 = /generate sampling seed 11: ${JSON.stringify(g0.json)}`);

// embeddings (the SDK asks for base64 and decodes it) equal /embed's vectors, float32 for float32
const eclient = new OpenAI({ baseURL: embedBase + "/v1", apiKey: key, maxRetries: 0 });
const etexts = golden.cases.map((c) => c.text);
const emb = await eclient.embeddings.create({ model: "st5-tiny", input: etexts });
const ref = await post("/embed", { text: etexts }, embedBase);
check(emb.object === "list" && emb.data.length === etexts.length && emb.model === "st5-tiny" &&
      emb.usage.prompt_tokens > 0, `embeddings: ${JSON.stringify(emb).slice(0, 200)}`);
for (let i = 0; i < etexts.length; i++) {
  const a = emb.data[i].embedding, b = ref.json.results[i].embedding;
  check(emb.data[i].index === i && a.length === b.length && a.every((x, k) => x === Math.fround(b[k])),
        `embedding ${i} differs from /embed`);
}
const embF = await eclient.embeddings.create({ model: "st5-tiny", input: etexts[0], encoding_format: "float" });
check(JSON.stringify(embF.data[0].embedding) === JSON.stringify(ref.json.results[0].embedding),
      "embeddings encoding_format float = /embed's numbers");
const embIds = await eclient.embeddings.create({ model: "st5-tiny", input: [golden.cases[0].input_ids], encoding_format: "float" });
const refIds = await post("/embed", { ids: golden.cases[0].input_ids }, embedBase);
check(JSON.stringify(embIds.data[0].embedding) === JSON.stringify(refIds.json.embedding), "embeddings of ids = /embed's");

// unknown model -> NotFoundError; wrong API key -> AuthenticationError
try {
  await client.completions.create({ model: "no-such-model", prompt: "a", max_tokens: 2 });
  check(false, "unknown model accepted");
} catch (e) {
  check(e instanceof NotFoundError && e.status === 404 && e.code === "model_not_found", `unknown model: ${e}`);
}
try {
  await new OpenAI({ baseURL: base + "/v1", apiKey: "wrong", maxRetries: 0 }).models.list();
  check(false, "wrong key accepted");
} catch (e) {
  check(e instanceof AuthenticationError && e.status === 401, `wrong key: ${e}`);
}

console.log(`clients: ${checks} checks, ${fails} failed`);
process.exit(fails ? 1 : 0);
