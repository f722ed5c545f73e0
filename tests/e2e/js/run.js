// Microsoft's JavaScript Personalizer clients, unmodified but for endpoint and key, against a
// running Tailor: `node run.js <base url> <key with the admin scope and a default experiment>`.
// Exits non-zero at the first answer a client could not use. Not run in CI (see README.md).
"use strict";
const assert = require("node:assert/strict");
const { PersonalizerClient } = require("@azure/cognitiveservices-personalizer");
const { CognitiveServicesCredentials } = require("@azure/ms-rest-azure-js");
const createClient = require("@azure-rest/ai-personalizer").default;
const { AzureKeyCredential } = require("@azure/core-auth");

const [url, key] = process.argv.slice(2);
const actions = [
  { id: "NewsArticle", features: [{ type: "News" }] },
  { id: "SportsArticle", features: [{ type: "Sports" }] },
];

async function v1Client() {  // @azure/cognitiveservices-personalizer 2.0.1: /personalizer/v1.0
  const client = new PersonalizerClient(new CognitiveServicesCredentials(key), url);
  const ranked = await client.rank({ contextFeatures: [{ timeOfDay: "Morning" }], actions,
    excludedActions: ["SportsArticle"], eventId: "js-v1-1" });
  assert.equal(ranked.rewardActionId, "NewsArticle");
  await client.events.reward(ranked.eventId, { value: 1 });
  const deferred = await client.rank({ actions, deferActivation: true });
  await client.events.activate(deferred.eventId);
}

// @azure-rest/ai-personalizer 1.0.0-beta.1: /personalizer/v1.1-preview.3. Its isUnexpected()
// misreads every path with a parameter (it matches the full path against prefix-less
// templates), so statuses are checked directly.
async function expect(call, status) {
  const answer = await call;
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  return answer;
}

async function restClient() {
  const client = createClient(url, new AzureKeyCredential(key), { allowInsecureConnection: true });
  const rank = (body) => expect(client.path("/rank").post({ body }), "201");
  const ranked = await rank({ contextFeatures: [{ timeOfDay: "Night" }], actions,
    eventId: "js-rest-1", deferActivation: true });
  await expect(client.path("/events/{eventId}/activate", "js-rest-1").post(), "204");
  await expect(client.path("/events/{eventId}/reward", "js-rest-1").post({ body: { value: 0.5 } }), "204");
  assert.equal(ranked.body.eventId, "js-rest-1");
  const slots = [{ id: "Main", features: [{ size: "large" }], baselineAction: "NewsArticle" },
                 { id: "Side", features: [{ size: "small" }], baselineAction: "SportsArticle" }];
  const multi = await expect(client.path("/multislot/rank").post({ body: {
    contextFeatures: [{ timeOfDay: "Noon" }], actions, slots, eventId: "js-ms-1", deferActivation: true } }), "201");
  assert.deepEqual(multi.body.slots.map((s) => s.id), ["Main", "Side"]);
  await expect(client.path("/multislot/events/{eventId}/activate", "js-ms-1").post(), "204");
  await expect(client.path("/multislot/events/{eventId}/reward", "js-ms-1").post({ body: {
    reward: [{ slotId: "Main", value: 1 }, { slotId: "Side", value: 0 }] } }), "204");
  for (const path of ["/configurations/service", "/configurations/policy", "/model/properties", "/logs/properties"]) {
    await expect(client.path(path).get(), "200");
  }
  const model = await client.path("/model").get().asNodeStream();
  assert.equal(model.status, "200");
  const chunks = []; for await (const chunk of model.body) chunks.push(chunk);
  await expect(client.path("/model").put({ body: Buffer.concat(chunks), contentType: "application/octet-stream" }), "204");
  const end = new Date(Date.now() + 60000), start = new Date(Date.now() - 3600000);
  const created = await expect(client.path("/evaluations").post({ body: { name: "js", startTime: start,
    endTime: end, enableOfflineExperimentation: false,
    policies: [{ name: "eps05", arguments: "--cb_explore_adf --epsilon 0.05" }] } }), "201");
  assert.ok(created.headers.location.endsWith(`/evaluations/${created.body.id}`));
  let evaluation = created;
  for (let i = 0; i < 240 && evaluation.body.status === "pending"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    evaluation = await expect(client.path("/evaluations/{evaluationId}", created.body.id).get(), "200");
  }
  assert.equal(evaluation.body.status, "completed");
  assert.deepEqual(evaluation.body.policyResults.map((p) => p.policySource).slice(0, 3), ["Online", "Baseline", "Random"]);
  const listed = await expect(client.path("/evaluations").get(), "200");
  assert.ok(listed.body.some((e) => e.id === created.body.id));
  await expect(client.path("/evaluations/{evaluationId}", created.body.id).delete(), "204");
  await expect(client.path("/logs/interactions").post({ body: new Uint8Array([1]), contentType: "application/octet-stream" }), "403");
}

v1Client().then(restClient).then(() => console.log("ok")).catch((error) => {
  console.error(error);
  process.exit(1);
});
