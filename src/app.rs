use crate::adapters::page;
use crate::i18n::Lang;
use crate::model::Model;
use crate::pages::center::CenterPanel;
use crate::pages::device::{restore, DevicePanel};

use crate::pages::engineer::{CenterArea, DevicePage, DevicesPage, NotFound, ProductsPage};
use crate::pages::log::LogPanel;
use crate::pages::monitoring::MonitoringPage;
use crate::pages::packages::{NewPackagePage, PackagesPage};
use crate::pages::plans::{NewPlanPage, PlanPage, PlansPage};
use crate::pages::upgrade::UpgradePanels;
use crate::pages::verify::{VerificationPage, VerifyPage};
use crate::pages::{tr, Controls, LanguageSwitch};
use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

/// The whole app: the technician's console at `/`, the engineer's pages under `/center`.
#[component]
pub fn App() -> impl IntoView {
    let model = Model::new(Lang::from_browser(&page::language()));
    provide_context(model);
    Effect::new(move |_| {
        let lang = model.lang.get();
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.tag());
        }
    });
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=Technician />
                <ParentRoute path=path!("/center") view=CenterArea>
                    <Route path=path!("") view=ProductsPage />
                    <Route path=path!("products/:product") view=DevicesPage />
                    <Route path=path!("products/:product/devices/:device") view=DevicePage />
                    <Route path=path!("packages") view=PackagesPage />
                    <Route path=path!("packages/new") view=NewPackagePage />
                    <Route path=path!("plans") view=PlansPage />
                    <Route path=path!("plans/new") view=NewPlanPage />
                    <Route path=path!("plans/:id") view=PlanPage />
                    <Route path=path!("plans/:id/monitoring") view=MonitoringPage />
                    <Route path=path!("verify") view=VerifyPage />
                    <Route path=path!("verifications/:id") view=VerificationPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The technician's console page.
#[component]
fn Technician() -> impl IntoView {
    let model: Model = expect_context();
    let controls: Controls = StoredValue::new_local(None);
    provide_context(controls);
    restore();
    crate::pages::device::watch_return();
    leptos::task::spawn_local(async move {
        match crate::resume::find().await {
            // Continuing sends the kept reports first.
            Some(summary) => model.resumable.set(Some(summary)),
            None => {
                let settings = model.center_settings.get_untracked();
                crate::center::deliver_kept(settings, model).await;
            }
        }
    });
    // Browsers slow hidden tabs: say so while a transfer runs.
    let on_visibility = move |_| {
        model
            .hidden_warning
            .set(page::hidden() && model.running.get_untracked())
    };
    let _ = window_event_listener(leptos::ev::visibilitychange, on_visibility);
    Effect::new(move |_| {
        let _ = model.lang.get();
        document().set_title(&tr("title")());
    });
    view! {
        <header class="top">
            <div>
                <h1>{tr("title")}</h1>
                <p class="lede">{tr("lede")}</p>
            </div>
            <LanguageSwitch />
        </header>
        <main>
            <DevicePanel />
            <CenterPanel />
            <UpgradePanels />
            <LogPanel />
        </main>
    }
}
