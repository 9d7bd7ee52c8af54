/* Eddyscope: every Plotly figure keeps its data in the page. The pages already give each
   dcc.Graph the private config of app/ui/components.py; this sets the same as plotly.js's
   defaults as soon as it loads, so a figure drawn any other way cannot share to a cloud
   or link to plotly.com either. */
(function () {
    var PRIVATE = {
        displaylogo: false,
        showSendToCloud: false,
        showEditInChartStudio: false,
        showLink: false,
        sendData: false,
        plotlyServerURL: ""
    };
    var tries = 0;
    function apply() {
        if (window.Plotly && typeof window.Plotly.setPlotConfig === "function") {
            window.Plotly.setPlotConfig(PRIVATE);
            return;
        }
        if (tries++ < 600) { setTimeout(apply, 50); }
    }
    apply();
})();
