// The soak's app in proxy mode (`python -m soak --proxy`): soak/processor.py's work in Node,
// behind every handler. One app serves the three handlers, as one downstream store serves
// every instance: its effects (in memory, and in $SOAK_EFFECTS_DIR for the verdict) are
// changed by one thread, so each check-and-set is atomic without a lock.
//
// Per task, from the JSON body: reserve the effect with the fencing generation, wait
// `sleepSeconds`, answer 422 if `reject`, else commit the effect (only if none was applied
// and no newer generation reserved since) and append `<task> <generation> <committed|refused>`
// to $SOAK_RUNS_DIR/<X-Soak-Handler>.runs (the handler incarnation the soak delivered to)
// just before answering 200: a run counts once it has answered.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const effects = new Map(); // task -> {highest, committed}

function update(task, generation, commit) {
  const effect = effects.get(task) || { highest: 0, committed: "-" };
  let ok;
  if (commit) {
    ok = effect.committed === "-" && generation >= effect.highest;
    if (ok) effect.committed = String(generation);
  } else {
    ok = generation >= effect.highest;
    effect.highest = Math.max(effect.highest, generation);
  }
  effects.set(task, effect);
  const file = path.join(process.env.SOAK_EFFECTS_DIR, task);
  fs.writeFileSync(file, `${effect.highest} ${effect.committed}`);
  return ok;
}

const server = http.createServer((req, res) => {
  if (req.method === "GET") return res.writeHead(200).end("ok");
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const task = req.headers["x-cloudtasks-taskname"];
    const handler = req.headers["x-soak-handler"];
    const generation = Number(req.headers["x-task-fencing-generation"] || 0);
    if (!/^t[0-9]+$/.test(task || "") || !/^h[0-9]+-[0-9]+$/.test(handler || "")) {
      return res.writeHead(400).end("not a soak task");
    }
    const payload = JSON.parse(Buffer.concat(chunks).toString() || "{}");
    update(task, generation, false);
    setTimeout(() => {
      if (payload.reject) return res.writeHead(422).end("the soak asked for a rejection");
      const outcome = update(task, generation, true) ? "committed" : "refused";
      const runs = path.join(process.env.SOAK_RUNS_DIR, `${handler}.runs`);
      fs.appendFileSync(runs, `${task} ${generation} ${outcome}\n`);
      res.writeHead(200).end("done");
    }, (payload.sleepSeconds || 0) * 1000);
  });
});

server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT || 8081), "127.0.0.1");
