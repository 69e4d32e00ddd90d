// Calling board: the server sends the board's state (server-sent events) whenever a number is
// called or recalled; the table is redrawn from it. EventSource reconnects by itself.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !("EventSource" in window)) { return; }
  var rows = document.getElementById("board-rows");
  var waiting = document.getElementById("board-waiting");

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    return td;
  }

  function english(text) {
    var span = document.createElement("span");
    span.lang = "en";
    span.textContent = text;
    return span;
  }

  function draw(state) {
    while (rows.firstChild) { rows.removeChild(rows.firstChild); }
    if (!state.called.length) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      var td = cell("ただいま呼び出しはありません ");
      td.colSpan = 2;
      td.appendChild(english("No numbers called yet"));
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    state.called.forEach(function (row, i) {
      var tr = document.createElement("tr");
      if (i === 0) { tr.className = "latest"; }
      tr.appendChild(cell(String(row.number), "board-number"));
      var where = cell(row.counter_ja + " ");
      where.appendChild(english(row.counter_en));
      tr.appendChild(where);
      rows.appendChild(tr);
    });
    waiting.textContent = String(state.waiting);
    board.setAttribute("data-updated", String(Date.now()));
  }

  var source = new EventSource(board.getAttribute("data-events"));
  source.addEventListener("board", function (event) { draw(JSON.parse(event.data)); });
})();
