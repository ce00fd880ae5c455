(function () {
  "use strict";
  // The charts of the results page, drawn from the figures the page carries: the same JSON
  // as `lampo report period --format json` (money in integer minor units, ratios as exact
  // "n/d" fractions). Numbers are turned into floats here for drawing only; every figure
  // the page prints comes from the server.
  var source = document.getElementById("figures");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var exponent = Number(document.body.getAttribute("data-minor") || "2");
  var f = data.figures;
  var currency = f.currency;
  function major(minor) { return minor / Math.pow(10, exponent); }
  function fraction(text) {
    if (text === null || text === undefined) return null;
    var parts = String(text).split("/");
    return parts.length === 2 ? Number(parts[0]) / Number(parts[1]) : Number(parts[0]);
  }
  var money = new Intl.NumberFormat(undefined, { maximumFractionDigits: exponent });
  var colours = ["#e85d0c", "#4a78d0", "#9aa5b8", "#2f9e6a", "#a35bd1", "#d1a13b", "#50b7c9"];

  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = "#3b455a";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  // this period, then each comparison the report makes (QoQ or --vs, then YoY)
  var series = [[f.period.label, f]];
  if (data.base) series.push([data.base.period.label + " (" + data.against + ")", data.base]);
  if (data.year_ago && data.against !== "YoY") {
    series.push([data.year_ago.period.label + " (YoY)", data.year_ago]);
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, config);
    canvas.setAttribute("data-drawn", "1");
  }

  function grouped(id, keys, valueOf, unit) {
    draw(id, {
      type: "bar",
      data: {
        labels: keys,
        datasets: series.map(function (s, i) {
          return {
            label: s[0],
            backgroundColor: colours[i],
            data: keys.map(function (k) { return valueOf(s[1], k); })
          };
        })
      },
      options: {
        responsive: true,
        scales: { y: { beginAtZero: true, title: { display: true, text: unit } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  function share(rows, key) {
    for (var i = 0; i < rows.length; i++) if (rows[i].key === key) return rows[i];
    return null;
  }

  var markets = f.by_market.map(function (s) { return s.key; });
  grouped("chart-markets", markets, function (fig, k) {
    var s = share(fig.by_market, k);
    return s ? major(s.money) : 0;
  }, "revenue, " + currency);

  var categories = Object.keys(f.units_by_category);
  grouped("chart-categories", categories, function (fig, k) {
    return fig.units_by_category[k] || 0;
  }, "units");

  draw("chart-channels", {
    type: "doughnut",
    data: {
      labels: f.by_channel.map(function (s) { return s.key; }),
      datasets: [{
        data: f.by_channel.map(function (s) { return major(s.money); }),
        backgroundColor: colours
      }]
    },
    options: {
      responsive: true,
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label: function (c) { return c.label + ": " + money.format(c.parsed) + " " + currency; }
          }
        }
      }
    }
  });

  if (data.targets.length) {
    draw("chart-targets", {
      type: "bar",
      data: {
        labels: data.targets.map(function (t) { return t.progress.target.label; }),
        datasets: [
          {
            label: "done",
            backgroundColor: colours[0],
            data: data.targets.map(function (t) { return 100 * fraction(t.progress.share); })
          },
          {
            label: "time gone",
            backgroundColor: colours[2],
            data: data.targets.map(function (t) { return 100 * fraction(t.progress.elapsed); })
          }
        ]
      },
      options: {
        indexAxis: "y",
        responsive: true,
        scales: { x: { beginAtZero: true, title: { display: true, text: "% of the target" } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  Object.keys(data.ranks).forEach(function (market, i) {
    var ranks = data.ranks[market];
    draw("chart-ranks-" + i, {
      type: "bar",
      data: {
        labels: ranks.map(function (r) { return r.rank + ". " + r.brand; }),
        datasets: [{
          label: "share of " + market + " (%)",
          backgroundColor: ranks.map(function (r) { return /xiaomi/i.test(r.brand) ? colours[0] : colours[1]; }),
          data: ranks.map(function (r) { return 100 * fraction(r.share); })
        }]
      },
      options: {
        indexAxis: "y",
        responsive: true,
        scales: { x: { beginAtZero: true, title: { display: true, text: "% of shipments" } } },
        plugins: { legend: { display: false } }
      }
    });
  });
  document.body.setAttribute("data-charts", String(document.querySelectorAll("canvas[data-drawn]").length));
})();
