// Progressive enhancement for every console page (the pages work without it).
// A fragment marked data-poll="URL" is fetched again until the server sends one without the
// mark: a job's panel while the job runs, a batch's progress. Same origin, session cookie, no
// inline script.
//
// Each poll is a request against the key's rate limit (it is the key's caller asking), so it
// is spaced: every 2 s at first, slower the longer the thing runs (up to 10 s), and a refusal
// (429, 503, the network) pauses it for the server's Retry-After or the next step, saying so
// beside the panel instead of replacing it. Polls carry X-Console-Poll: 1, which the server
// reads as "not a person": a page left open does not keep its session from idling out.

const FIRST_MS = 2000;
const MAX_MS = 10000;
const GROWTH = 1.5;

function nextDelay(delay) {
  return Math.min(Math.round(delay * GROWTH), MAX_MS);
}

function retryAfterMs(response, fallback) {
  const seconds = Number.parseFloat(response.headers.get("Retry-After") ?? "");
  if (Number.isFinite(seconds) && seconds > 0) return Math.min(Math.ceil(seconds * 1000), 60000);
  return fallback;
}

// The "paused" line beside a polled element, made once and reused.
function noteFor(element) {
  let note = element.previousElementSibling;
  if (!note || !note.classList.contains("poll-note")) {
    note = document.createElement("p");
    note.className = "poll-note help";
    note.setAttribute("role", "status");
    element.before(note);
  }
  return note;
}

function say(element, text) {
  noteFor(element).textContent = text;
}

function clear(element) {
  const note = element.previousElementSibling;
  if (note && note.classList.contains("poll-note")) note.remove();
}

function later(element, delay) {
  setTimeout(() => poll(element, delay), delay);
}

async function poll(element, delay) {
  const url = element.dataset.poll;
  if (!url) return;
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "text/html", "X-Console-Poll": "1" },
    });
  } catch {
    const wait = nextDelay(delay);
    const seconds = Math.round(wait / 1000);
    say(element, `Live updates paused: the service did not answer. Retrying in ${seconds} s.`);
    later(element, wait);
    return;
  }
  if (response.redirected || response.status === 401) {
    window.location.reload(); // the session ended: the page itself goes to sign-in
    return;
  }
  if (response.status === 429 || response.status >= 500) {
    const wait = retryAfterMs(response, nextDelay(delay));
    const seconds = Math.round(wait / 1000);
    say(element, `Live updates paused (${response.status}): retrying in ${seconds} s.`);
    later(element, wait);
    return;
  }
  if (!response.ok) {
    say(element, `Live updates stopped (${response.status}). Reload the page to see the latest.`);
    return;
  }
  const html = await response.text();
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  const fresh = template.content.firstElementChild;
  if (!fresh) return;
  clear(element);
  element.replaceWith(fresh);
  if (fresh.dataset.poll) later(fresh, nextDelay(delay));
}

for (const element of document.querySelectorAll("[data-poll]")) {
  later(element, FIRST_MS);
}
