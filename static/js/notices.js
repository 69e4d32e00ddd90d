// The author's notice form: the live recipient count. Each change to a condition asks the
// server (GET /staff/notices/count?…, the form's own field names) and shows the answer.
(function () {
  "use strict";
  const form = document.querySelector("form[data-count-url]");
  const out = document.getElementById("recipient-count");
  const texts = document.getElementById("count-texts");
  if (!form || !out || !texts) {
    return;
  }
  const RULE_FIELDS = new Set([
    "wards", "sex", "age_min", "age_max", "member_months_min", "member_months_max",
    "care_level", "care_levels", "disability", "disabilities", "pregnant", "living_alone",
  ]);
  let timer = null;
  let seq = 0;

  function query() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (RULE_FIELDS.has(name)) {
        params.append(name, value);
      }
    }
    return params.toString();
  }

  async function update() {
    const mine = ++seq;
    try {
      const resp = await fetch(form.dataset.countUrl + "?" + query(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const data = await resp.json();
      if (mine !== seq) {
        return;
      }
      if (resp.ok && typeof data.count === "number") {
        const template = data.count === 1 ? texts.dataset.one : texts.dataset.many;
        out.textContent = template.replace("{n}", data.count.toLocaleString());
        out.dataset.count = String(data.count);
      } else {
        out.textContent = texts.dataset.error;
        delete out.dataset.count;
      }
    } catch (err) {
      if (mine === seq) {
        out.textContent = texts.dataset.error;
      }
    }
  }

  function schedule(event) {
    if (event.target && RULE_FIELDS.has(event.target.name)) {
      clearTimeout(timer);
      timer = setTimeout(update, 250);
    }
  }

  form.addEventListener("change", schedule);
  form.addEventListener("input", schedule);
})();
