// Stand-in for the host's own javascript that our elements depend on (A1111 1.10.1 and Forge share it):
// gradioApp and updateInput (javascript/ui.js), InputAccordion's header checkbox and extra area
// (javascript/inputAccordion.js), and the prompt token counters (javascript/token-counters.js: an
// input event on the prompt box, then after a pause a click on the hidden token button, whose server
// function writes the count). Behaviour only, written for the tests; hostUiLoaded() runs it once the
// page is there, as the host's onUiLoaded does.

function gradioApp() {
    const app = document.querySelector("gradio-app");
    return app && app.shadowRoot ? app.shadowRoot : document;
}

function updateInput(target) {
    const event = new Event("input", { bubbles: true });
    Object.defineProperty(event, "target", { value: target });
    target.dispatchEvent(event);
}

function inputAccordionChecked(id, checked) {
    const accordion = gradioApp().getElementById(id);
    accordion.visibleCheckbox.checked = checked;
    accordion.onVisibleCheckboxChange();
}

function hostSetupAccordion(accordion) {
    const labelWrap = accordion.querySelector(".label-wrap");
    const gradioCheckbox = gradioApp().querySelector("#" + accordion.id + "-checkbox input");
    const extra = gradioApp().querySelector("#" + accordion.id + "-extra");
    const isOpen = () => labelWrap.classList.contains("open");
    let linked = true;
    if (extra) labelWrap.insertBefore(extra, labelWrap.lastElementChild);  // shown while closed

    const visibleCheckbox = document.createElement("input");
    visibleCheckbox.type = "checkbox";
    visibleCheckbox.checked = isOpen();
    visibleCheckbox.id = accordion.id + "-visible-checkbox";
    visibleCheckbox.className = "input-accordion-checkbox";
    labelWrap.querySelector("span").prepend(visibleCheckbox);
    accordion.visibleCheckbox = visibleCheckbox;
    accordion.onVisibleCheckboxChange = () => {
        if (linked && isOpen() !== visibleCheckbox.checked) labelWrap.click();
        gradioCheckbox.checked = visibleCheckbox.checked;
        updateInput(gradioCheckbox);
    };
    new MutationObserver(() => {
        if (!linked) return;
        visibleCheckbox.checked = isOpen();
        accordion.onVisibleCheckboxChange();
    }).observe(labelWrap, { attributes: true, attributeFilter: ["class"] });
    visibleCheckbox.addEventListener("click", (event) => { linked = false; event.stopPropagation(); });
    visibleCheckbox.addEventListener("input", accordion.onVisibleCheckboxChange);
}

function hostSetupTokenCounter(part) {
    const prompt = gradioApp().getElementById(part + "_prompt");
    const textarea = gradioApp().querySelector("#" + part + "_prompt textarea");
    const counter = gradioApp().getElementById(part + "_token_counter");
    if (!textarea || !counter) return;
    prompt.parentElement.insertBefore(counter, prompt);  // drawn over the prompt box's corner
    prompt.parentElement.style.position = "relative";
    counter.classList.add("token-counter-visible");
    let timer = null;
    textarea.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => gradioApp().getElementById(part + "_token_button").click(), 300);
    });
}

function hostUiLoaded() {
    for (const accordion of gradioApp().querySelectorAll(".input-accordion")) hostSetupAccordion(accordion);
    for (const part of ["txt2img", "img2img"]) hostSetupTokenCounter(part);
}
