// Delivering a background job's result to a widget: always from the widget's event loop, never
// inside the call that started the job (QFuture::then(context, …) runs the continuation at once
// when the job has already finished), so that callers see one order of events.
#pragma once

#include <QFuture>
#include <QFutureWatcher>
#include <QObject>

#include <utility>

namespace docdsa::gui {

// Calls `f(result)` on `ctx`'s thread once `future` has finished; nothing if `ctx` is gone.
template <typename T, typename F>
void when_done(QFuture<T> future, QObject* ctx, F f) {
  auto* w = new QFutureWatcher<T>(ctx);
  QObject::connect(w, &QFutureWatcherBase::finished, ctx, [w, f = std::move(f)]() mutable {
    w->deleteLater();
    f(w->result());
  });
  w->setFuture(std::move(future));
}

}  // namespace docdsa::gui
