// sd-webui-tagger: UI glue for the extension's own elements (ids and classes start with "tagger_").

// The document root gradio renders into (a shadow root in some gradio builds).
function taggerRoot() {
    const app = document.querySelector("gradio-app");
    return app && app.shadowRoot ? app.shadowRoot : document;
}

// Index of the selected tab of the gr.Tabs with elem_id `tabsId` (0 when not found).
function taggerSelectedTab(tabsId) {
    const tabs = taggerRoot().querySelector("#" + tabsId);
    if (!tabs) return 0;
    const nav = tabs.querySelector(".tab-nav") || tabs.querySelector("div");
    const buttons = nav ? Array.from(nav.querySelectorAll(":scope > button")) : [];
    const selected = buttons.findIndex((button) => button.classList.contains("selected"));
    return selected < 0 ? 0 : selected;
}

// JoyTag button: gradio passes the inputs (tab index placeholder, prompt, 5 images) followed by the
// one output (prompt); send the inputs back with the selected img2img sub-tab as the first value.
function tagger_joytag_args(...args) {
    const inputs = args.slice(0, -1);
    inputs[0] = taggerSelectedTab("mode_img2img");
    return inputs;
}

// The interrogator the settings choose: the hidden textbox the 🏷️ button keeps up to date.
function taggerInterrogatorName() {
    const field = taggerRoot().querySelector("#tagger_interrogator_name textarea, #tagger_interrogator_name input");
    const name = field ? field.value.trim() : "";
    return name || "the interrogator chosen in Settings";
}

// Hover titles for our buttons (gradio 3 and 4 buttons take no title of their own).
const TAGGER_TITLES = {
    tagger_joytag_button: (name) => `Interrogate with ${name} - tag the image of the current img2img tab and put the tags into the prompt (model, replace or append: see Settings)`,
    tagger_caption_run: () => "Caption every image in the folder with the chosen interrogator",
    tagger_txt2img_apply_button: () => "Put the upsampled prompt into the prompt box to edit it; upsampling is switched off so the tags are not added twice",
    tagger_img2img_apply_button: () => "Put the upsampled prompt into the prompt box to edit it; upsampling is switched off so the tags are not added twice",
    tagger_txt2img_undo_apply: () => "Undo 'Apply to prompt': the prompt as it was, upsampling on again",
    tagger_img2img_undo_apply: () => "Undo 'Apply to prompt': the prompt as it was, upsampling on again",
};

function taggerApplyTitles() {
    const root = taggerRoot();
    const name = taggerInterrogatorName();
    for (const [id, title] of Object.entries(TAGGER_TITLES)) {
        const element = root.querySelector("#" + id);
        const text = title(name);
        if (element && element.title !== text) element.title = text;
    }
}

// A title read when the pointer arrives, so a changed setting shows without waiting for a DOM change.
document.addEventListener("mouseover", (event) => {
    if (event.target && event.target.closest && event.target.closest("#tagger_joytag_button")) taggerApplyTitles();
}, true);

(function taggerWatch() {
    let pending = false;
    const observer = new MutationObserver(() => {
        if (pending) return;
        pending = true;
        requestAnimationFrame(() => {
            pending = false;
            taggerApplyTitles();
        });
    });
    const start = () => {
        taggerApplyTitles();
        observer.observe(document.body, { childList: true, subtree: true });
    };
    if (document.body) start();
    else document.addEventListener("DOMContentLoaded", start);
})();

// After one of our buttons wrote into a prompt box (#txt2img_prompt, #img2img_prompt): send the input
// event the host's token counter listens to, as typing would.
function tagger_prompt_written(elemId) {
    const textarea = taggerRoot().querySelector("#" + elemId + " textarea");
    if (textarea) textarea.dispatchEvent(new Event("input", { bubbles: true }));
    return [];
}
