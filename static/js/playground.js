// The playground page (templates/playground/page.html): compose a conversation, stream the
// answer from /playground/stream/ (server-sent events over a POST fetch, read with a
// ReadableStream reader), stop it, compare two routes side by side.
//
// No framework, no build step, no inline script: the page's data comes from json_script
// elements and data- attributes. Model output is rendered by markdown.js, which never
// parses text as HTML.

import { renderMarkdown } from "./markdown.js";

const form = document.getElementById("pg-form");
if (form) setUp(form);

function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function setUp(form) {
  const teams = readJson("pg-teams") || [];
  const initial = readJson("pg-initial");
  const $ = (id) => document.getElementById(id);
  const ui = {
    team: $("pg-team"),
    route: $("pg-route"),
    routeB: $("pg-route-b"),
    routeBField: $("pg-route-b-field"),
    compare: $("pg-compare"),
    temperature: $("pg-temperature"),
    maxTokens: $("pg-max-tokens"),
    system: $("pg-system"),
    turns: $("pg-turns"),
    send: $("pg-send"),
    stop: $("pg-stop"),
    status: $("pg-status"),
    answers: $("pg-answers"),
    turnTemplate: $("pg-turn-template"),
    answerTemplate: $("pg-answer-template"),
  };
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const streamUrl = form.dataset.streamUrl;
  let controllers = [];

  // -- team and routes ------------------------------------------------------------------
  function fillRoutes(select, routes, wanted) {
    select.replaceChildren(
      ...routes.map((name) => {
        const option = document.createElement("option");
        option.value = option.textContent = name;
        return option;
      }),
    );
    if (wanted && routes.includes(wanted)) select.value = wanted;
  }
  function teamChanged(wantedA, wantedB) {
    const team = teams.find((t) => String(t.id) === String(ui.team.value)) || teams[0];
    const routes = team ? team.routes : [];
    fillRoutes(ui.route, routes, wantedA);
    fillRoutes(ui.routeB, routes, wantedB || routes[1]);
  }
  ui.team.addEventListener("change", () => teamChanged());
  ui.compare.addEventListener("change", () => {
    ui.routeBField.hidden = !ui.compare.checked;
  });
  teamChanged();

  // -- the conversation -----------------------------------------------------------------
  function renumber() {
    [...ui.turns.children].forEach((li, i) => {
      li.querySelector(".pg-role").setAttribute("aria-label", `Role of message ${i + 1}`);
      li.querySelector(".pg-turn-text").setAttribute("aria-label", `Message ${i + 1}`);
      li.querySelector(".pg-remove").setAttribute("aria-label", `Remove message ${i + 1}`);
      li.querySelector(".pg-remove").hidden = ui.turns.children.length === 1;
    });
  }
  function addTurn(role, content) {
    const li = ui.turnTemplate.content.firstElementChild.cloneNode(true);
    li.querySelector(".pg-role").value = role;
    const text = li.querySelector(".pg-turn-text");
    text.value = content || "";
    text.placeholder = role === "user" ? "Ask something…" : "What the assistant said…";
    li.querySelector(".pg-remove").addEventListener("click", () => {
      li.remove();
      renumber();
    });
    ui.turns.append(li);
    renumber();
    return text;
  }
  function resetTurns(messages) {
    ui.turns.replaceChildren();
    for (const m of messages && messages.length ? messages : [{ role: "user", content: "" }]) {
      addTurn(m.role, m.content);
    }
  }
  $("pg-add-user").addEventListener("click", () => addTurn("user", "").focus());
  $("pg-add-assistant").addEventListener("click", () => addTurn("assistant", "").focus());
  $("pg-clear").addEventListener("click", () => {
    resetTurns([]);
    ui.answers.replaceChildren();
    ui.turns.querySelector("textarea").focus();
  });

  function collect() {
    const messages = [...ui.turns.children].map((li) => ({
      role: li.querySelector(".pg-role").value,
      content: li.querySelector(".pg-turn-text").value,
    }));
    // A trailing empty message is a placeholder, not part of the conversation.
    while (messages.length > 1 && !messages[messages.length - 1].content.trim()) messages.pop();
    return {
      team: ui.team.value,
      system: ui.system.value,
      messages,
      temperature: ui.temperature.value === "" ? null : Number(ui.temperature.value),
      max_tokens: ui.maxTokens.value === "" ? null : Number(ui.maxTokens.value),
    };
  }

  // -- answers --------------------------------------------------------------------------
  function panel(route) {
    const node = ui.answerTemplate.content.firstElementChild.cloneNode(true);
    node.querySelector(".pg-answer-route").textContent = route;
    ui.answers.append(node);
    const text = node.querySelector(".pg-answer-text");
    const state = node.querySelector(".pg-answer-state");
    const error = node.querySelector(".pg-answer-error");
    const meta = node.querySelector(".pg-meta");
    let pending = null; // the latest text, rendered at the next frame (one render per frame)
    return {
      node,
      setState(value) {
        state.textContent = value;
        node.dataset.state = value.toLowerCase().replace(/[^a-z]+/g, "-").replace(/-$/, "");
      },
      render(markdown) {
        pending = null;
        text.replaceChildren(renderMarkdown(markdown));
      },
      // While streaming: re-rendering the whole answer per token would be quadratic in
      // long answers; tokens that arrive within one frame share one render.
      renderSoon(markdown) {
        if (pending === null) {
          requestAnimationFrame(() => {
            if (pending !== null) this.render(pending);
          });
        }
        pending = markdown;
      },
      fail(message) {
        error.textContent = message;
        error.hidden = false;
      },
      showMeta(facts) {
        meta.replaceChildren(...metaRows(facts));
        meta.hidden = false;
      },
    };
  }

  function metaRows(m) {
    const rows = [];
    const row = (term, value) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value;
      rows.push(dt, dd);
    };
    const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);
    if (m.provider) {
      const deployment = m.deployment_id ? ` (deployment #${m.deployment_id})` : "";
      row("Served by", `${m.provider} / ${m.upstream_model}${deployment}`);
    }
    row(
      "Failovers",
      m.failovers ? `${m.failovers} (${m.failover_reasons.join(", ")})` : "none",
    );
    row("Latency", ms(m.latency_ms));
    row("Time to first token", ms(m.ttft_ms));
    row("Tokens", `${m.input_tokens} in / ${m.output_tokens} out`);
    row("Cost", `$${Number(m.cost_usd).toFixed(6)}`);
    const similarity = m.cache_similarity ? ` (similarity ${m.cache_similarity.toFixed(3)})` : "";
    row("Cache", `${m.cache}${m.cache === "SEMANTIC-HIT" ? similarity : ""}`);
    if (m.guardrails && m.guardrails.length) row("Guardrails", m.guardrails.join(", "));
    if (m.finish_reason === "length") row("Note", "The answer was cut at max tokens.");
    if (m.finish_reason === "content_filter") row("Note", "A guardrail cut the answer.");
    let id = document.createElement("code");
    id.textContent = m.request_id;
    if (m.audit_url) {
      const link = document.createElement("a");
      link.href = m.audit_url;
      link.append(id);
      link.title = "Open this call in the audit log";
      id = link;
    }
    row("Request id", id);
    return rows;
  }

  async function refusal(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) {
        const id = body.error.request_id ? ` (request id ${body.error.request_id})` : "";
        return body.error.message + id;
      }
    } catch (e) {
      // not JSON: a proxy's or Django's own page (e.g. CSRF failure)
    }
    if (response.status === 403) {
      return "The gateway refused the request. Reload the page (your session may have ended) and try again.";
    }
    return `The gateway could not answer (HTTP ${response.status}). Try again in a moment.`;
  }

  function parseEvent(raw) {
    let event = "message";
    const data = [];
    for (const line of raw.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    return { event, data: data.length ? JSON.parse(data.join("\n")) : null };
  }

  async function runOne(payload, view) {
    const controller = new AbortController();
    controllers.push(controller);
    let text = "";
    view.setState("Waiting");
    try {
      const response = await fetch(streamUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          "X-CSRFToken": csrf,
        },
        body: JSON.stringify(payload),
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok) {
        view.setState("Failed");
        view.fail(await refusal(response));
        return { ok: false, text };
      }
      view.setState("Streaming");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let failed = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const { event, data } = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event === "token") {
            text += data.text;
            view.renderSoon(text);
          } else if (event === "error") {
            failed = true;
            view.fail(`${data.message} (request id ${data.request_id})`);
          } else if (event === "meta") {
            view.showMeta(data);
          }
        }
      }
      view.render(text);
      view.setState(failed ? "Failed" : "Done");
      return { ok: !failed, text };
    } catch (err) {
      view.render(text); // what arrived is what stays
      if (err.name === "AbortError") {
        view.setState("Stopped");
        return { ok: false, stopped: true, text };
      }
      view.setState("Failed");
      view.fail("The connection to the gateway broke off. Check the network and try again.");
      return { ok: false, text };
    } finally {
      controllers = controllers.filter((c) => c !== controller);
    }
  }

  function setRunning(running, message) {
    ui.send.disabled = running;
    ui.stop.disabled = !running;
    ui.status.textContent = message || "";
  }

  async function send() {
    if (controllers.length) return;
    const base = collect();
    const last = base.messages[base.messages.length - 1];
    if (!last || last.role !== "user" || !last.content.trim()) {
      ui.status.textContent = "Write a user message to send.";
      return;
    }
    if (!ui.route.value) {
      ui.status.textContent = "Choose a route.";
      return;
    }
    const routes = ui.compare.checked ? [ui.route.value, ui.routeB.value] : [ui.route.value];
    ui.answers.replaceChildren();
    ui.answers.classList.toggle("pg-compare", routes.length > 1);
    const views = routes.map(panel);
    setRunning(true, routes.length > 1 ? "Streaming two answers…" : "Streaming…");
    const results = await Promise.all(
      routes.map((route, i) => runOne({ ...base, route }, views[i])),
    );
    const stopped = results.some((r) => r.stopped);
    setRunning(false, stopped ? "Stopped." : "");
    if (routes.length === 1 && results[0].ok && results[0].text) {
      // Carry on the conversation: the answer becomes the assistant's turn.
      const turns = [...ui.turns.children];
      const tail = turns[turns.length - 1];
      if (tail && !tail.querySelector(".pg-turn-text").value.trim()) tail.remove();
      addTurn("assistant", results[0].text);
      addTurn("user", "");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send();
    }
  });
  ui.stop.addEventListener("click", () => {
    for (const controller of controllers) controller.abort();
  });

  // -- a stored run: opened from the history (and re-run when asked) --------------------
  if (initial) {
    if (teams.some((t) => String(t.id) === String(initial.team))) ui.team.value = initial.team;
    teamChanged(initial.route);
    ui.system.value = initial.system || "";
    if (initial.temperature !== null) ui.temperature.value = initial.temperature;
    if (initial.max_tokens !== null) ui.maxTokens.value = initial.max_tokens;
    resetTurns(initial.messages);
    if (initial.autorun) {
      send();
    } else if (initial.answer) {
      const view = panel(initial.route);
      view.render(initial.answer);
      view.setState("Saved");
      if (initial.meta && initial.meta.request_id) view.showMeta(initial.meta);
    }
  } else {
    resetTurns([]);
  }
}
